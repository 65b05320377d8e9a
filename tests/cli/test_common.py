"""The CLI's shared pieces: times as users type them, and the progress display."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from webhookkit.cli._common import Progress, parse_time
from webhookkit.exceptions import ConfigurationError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2h", NOW - timedelta(hours=2)),
        ("1.5d", NOW - timedelta(days=1, hours=12)),
        ("1w", NOW - timedelta(weeks=1)),
        ("2026-02-28T10:00:00Z", datetime(2026, 2, 28, 10, tzinfo=UTC)),
        ("2026-02-28T10:00:00+02:00", datetime(2026, 2, 28, 8, tzinfo=UTC)),
        ("2026-02-28 10:00", datetime(2026, 2, 28, 10, tzinfo=UTC)),  # naive means UTC
    ],
)
def test_times_are_iso_or_an_age(text: str, expected: datetime) -> None:
    assert parse_time(text, field="since", now=NOW) == expected


def test_a_bad_time_names_its_option() -> None:
    with pytest.raises(ConfigurationError, match="failed_since: 'yesterday'") as info:
        parse_time("yesterday", field="failed_since", now=NOW)
    assert info.value.field == "failed_since"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_a_bar_on_a_terminal_and_counts_otherwise() -> None:
    tty = Terminal()
    bar = Progress(4, "resend", stream=tty)
    for _ in range(4):
        bar.advance()
    bar.finish("done")
    frames = tty.getvalue().split("\r")
    assert frames[1].startswith("resend [#######-----") and frames[1].endswith("1/4")
    assert "[" + "#" * 30 + "] 4/4\nresend: 4/4 (done)\n" in tty.getvalue()
    pipe = io.StringIO()
    quiet = Progress(4, "resend", stream=pipe)
    for _ in range(4):
        quiet.advance()
    quiet.finish()
    assert pipe.getvalue() == "resend: 4/4\n"
