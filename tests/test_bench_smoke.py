"""Smoke run of ``make bench`` at tiny sizes (``python -m benchmarks --quick``).

No timing is asserted: the figures depend on the machine. What must hold is that every
scenario ran, produced finite figures, and that every delivery it sent was counted (the
harness raises when the receiver's count, the kit's counters or the store disagree with what
was queued, so a run that lost deliveries fails here).
"""

from __future__ import annotations

import math
from importlib.util import find_spec
from pathlib import Path

import pytest

from benchmarks import harness

# The module's fixture starts PostgreSQL, two receivers and about ten processes; on 2 cores
# shared with other jobs that can pass the suite's 120 s default (about 40 s when idle).
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def report() -> harness.Report:
    return harness.run(harness.QUICK)


def test_every_scenario_ran_with_finite_figures(report: harness.Report) -> None:
    assert set(report.tables) == {*harness.SCENARIOS, "targets"}
    for name in harness.SCENARIOS:
        assert report.tables[name].rows, name
    assert report.numbers
    # Resident memory need not grow for the smoke run's few hundred pending deliveries (the
    # allocator reuses freed pages), so that one figure may be 0; the traced heap may not.
    bad = {
        k: v
        for k, v in report.numbers.items()
        if not (math.isfinite(v) and (v > 0 or (k == "memory.rss" and v == 0)))
    }
    assert not bad
    assert report.checks and all(math.isfinite(c.measured) for c in report.checks)


def test_end_to_end_covers_every_store_signing_and_loop(report: harness.Report) -> None:
    sizes = harness.QUICK
    loops = ["asyncio"] + (["uvloop"] if find_spec("uvloop") else [])
    kit_rows = [r for r in report.tables["e2e"].rows if r[0] == "webhookkit"]
    combos = {(r[1], r[2], r[3]) for r in kit_rows}
    for loop in loops:
        for store in ("memory", "sqlite", "postgresql"):
            for signing in ("HMAC", "JWS RS256"):
                assert (loop, store, signing) in combos
    for row in kit_rows:
        events = sizes.events if row[2] == "memory" else sizes.sql_events
        assert row[4] == events * sizes.webhooks  # every delivery, counted by the receiver
    assert any(r[0].startswith("requests.Session") for r in report.tables["e2e"].rows)
    # The sender's CPU share was measured for every kit run and raw aiohttp baseline.
    measured = [r for r in report.tables["e2e"].rows if r[0] in ("webhookkit",) or "raw" in r[0]]
    assert all(isinstance(r[10], float) and math.isfinite(r[10]) and r[10] > 0 for r in measured)


async def test_pg_rows_claims_and_finishes_every_delivery_of_every_variant() -> None:
    from benchmarks import pg_rows

    lines = await pg_rows.run(rows=300, claim=50, rounds=1)  # raises if a delivery was not finished
    assert len(lines) == 2 + len(pg_rows.VARIANTS)
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1] == "300" and all(float(c) > 0 for c in cells[2:])


def test_queue_workers_triggers_memory_and_profile(report: harness.Report) -> None:
    sizes = harness.QUICK
    queue = report.tables["queue"].rows
    assert queue[0][0] == "webhookkit PostgresStore" and queue[0][1] >= sizes.queue_jobs
    assert queue[0][4] > 0  # statements were counted by pg_stat_statements
    if find_spec("pgqueuer"):
        assert [r[0] for r in queue[1:]] == ["pgqueuer, batch 10", "pgqueuer, batch 100"]
        assert all(r[1] == sizes.queue_jobs for r in queue[1:])
    workers = report.tables["workers"].rows
    assert {(r[0], r[1]) for r in workers} == {
        (kind, n) for kind in ("25 ms sends", "store-bound") for n in sizes.worker_counts
    }
    stores = {r[0] for r in report.tables["triggers"].rows}
    assert stores == {"memory", "sqlite", "postgresql"}
    pg_rows = [r for r in report.tables["triggers"].rows if r[0] == "postgresql"]
    assert all(isinstance(r[7], float) and isinstance(r[8], float) for r in pg_rows)  # counted
    assert report.numbers["memory.rss"] >= 0 and report.numbers["memory.heap"] > 0
    assert len(report.tables["profile"].rows) == 15


def test_docs_section_is_replaced_not_appended(report: harness.Report, tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## Payloads\n\nkept\n", "utf-8")
    text = harness.render(report, "python -m benchmarks")
    harness.write_docs(text, doc)
    harness.write_docs(text.replace("Issue 11 scenarios", "Issue 11 scenarios again"), doc)
    written = doc.read_text("utf-8")
    assert written.count(harness.BEGIN) == 1 and written.count(harness.END) == 1
    assert "## Payloads\n\nkept" in written and "scenarios again" in written
    assert "python -m benchmarks" in written and "PostgreSQL" in written
