"""``events``, ``keys generate|jwks|rotate``, ``--help`` everywhere, and short errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from webhookkit.cli import build_parser, main
from webhookkit.signing import jwk_thumbprint

from ._cli import COMMAND, env_without, one_line_error, run


def _commands() -> list[list[str]]:
    """Every command and subcommand path of the parser, found by walking it."""
    import argparse

    found: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found.append([*path, name])
                    walk(child, [*path, name])

    walk(build_parser(), [])
    return found


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands()
    assert ["deliveries", "resend"] in commands and ["keys", "rotate"] in commands
    assert len(commands) >= 18
    for path in commands:  # in process: twenty interpreters would only add start-up time
        with pytest.raises(SystemExit) as exit_info:
            main([*path, "--help"])
        assert exit_info.value.code == 0, path
        out = capsys.readouterr().out
        assert out.startswith("usage: webhookkit " + " ".join(path)), path
        assert "-h, --help" in out


def test_the_console_script_runs() -> None:
    script = Path(sys.executable).parent / "webhookkit"
    top = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert top.returncode == 0 and "listen" in top.stdout and "resend" in top.stdout
    assert top.stdout.startswith("usage: webhookkit")


def test_events_lists_the_catalogue_as_json() -> None:
    result = run("events", "--json", "--kind", "sync")
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)
    assert len(events) == 23
    assert {"name": "CHECKOUT_CALCULATE_TAXES", "value": "checkout_calculate_taxes"}.items() <= (
        next(e for e in events if e["name"] == "CHECKOUT_CALCULATE_TAXES").items()
    )


def test_events_into_a_closed_pipe_stops_quietly() -> None:
    # ``webhookkit events | head -1`` once head has gone: the pipe's reading end is closed
    # before the command writes, so its first write fails (deterministically, unlike head).
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [*COMMAND, "events"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
            env=env_without(),
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == b""


def test_a_generated_key_gives_a_jwks_with_its_thumbprint(tmp_path: Path) -> None:
    key = run("keys", "generate")
    assert key.returncode == 0, key.stderr
    assert key.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    pem = tmp_path / "key.pem"
    pem.write_text(key.stdout)
    for command in (["keys", "jwks"], ["jwks"]):
        jwks = run(*command, "--signing-key-file", str(pem))
        assert jwks.returncode == 0, jwks.stderr
        [jwk] = json.loads(jwks.stdout)["keys"]
        assert jwk["alg"] == "RS256" and jwk["kid"] == jwk_thumbprint(jwk)
        assert "PRIVATE" not in jwks.stdout and '"d"' not in jwks.stdout
    # ``keys`` alone still prints a new key, as the first CLI did.
    assert run("keys").stdout.startswith("-----BEGIN PRIVATE KEY-----")


def test_rotate_writes_the_next_key_and_publishes_both(tmp_path: Path) -> None:
    current = tmp_path / "current.pem"
    assert run("keys", "generate", "--alg", "ES256", "--out", str(current)).returncode == 0
    assert current.stat().st_mode & 0o777 == 0o600
    new = tmp_path / "next.pem"
    rotated = run("keys", "rotate", "--key-file", str(current), "--new-key-file", str(new))
    assert rotated.returncode == 0, rotated.stderr
    keys = json.loads(rotated.stdout)["keys"]
    assert [k["alg"] for k in keys] == ["ES256", "RS256"]  # the current key still signs
    published_new = json.loads(run("jwks", "--key-file", str(new)).stdout)["keys"][0]
    assert keys[1]["kid"] == published_new["kid"]
    assert published_new["kid"] in rotated.stderr
    again = run("keys", "rotate", "--key-file", str(current), "--new-key-file", str(new))
    assert again.returncode == 1 and "exists" in one_line_error(again)


def test_bad_input_is_a_short_error_not_a_traceback(tmp_path: Path) -> None:
    missing = run("jwks", "--signing-key-env", "WEBHOOKKIT_TEST_NO_SUCH_VAR")
    assert missing.returncode == 2
    assert "WEBHOOKKIT_TEST_NO_SUCH_VAR" in one_line_error(missing)
    garbage = tmp_path / "bad.pem"
    garbage.write_text("not a key")
    bad = run("jwks", "--signing-key-file", str(garbage))
    assert bad.returncode == 2 and one_line_error(bad).startswith("webhookkit: error:")
    no_file = run("keys", "jwks", "--key-file", str(tmp_path / "absent.pem"))
    assert no_file.returncode == 1
    assert "absent.pem: No such file or directory" in one_line_error(no_file)
    store = run("worker", "--store", "mysql://db/x", "--domain", "shop.example.com")
    assert store.returncode == 2 and "store" in one_line_error(store)


def test_usage_errors_exit_2() -> None:
    assert run().returncode == 2
    assert run("no-such-command").returncode == 2
    assert run("send").returncode == 2  # URL and --event are required


def test_worker_needs_a_domain_and_a_shared_store(tmp_path: Path) -> None:
    no_domain = run("worker", "--store", f"sqlite:///{tmp_path / 'w.db'}")
    assert no_domain.returncode == 2 and "--domain" in no_domain.stderr
    memory = run("worker", "--store", "memory://", "--domain", "shop.example.com")
    assert memory.returncode != 0
    assert "store: a worker needs a shared store" in memory.stderr
    assert "Traceback" not in memory.stderr


def test_worker_starts_and_stops_on_sigterm(tmp_path: Path) -> None:
    import signal

    db = tmp_path / "hooks.db"
    with subprocess.Popen(
        [
            *COMMAND,
            "worker",
            "--store",
            f"sqlite:///{db}",
            "--domain",
            "shop.example.com",
            "--poll",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env_without(),
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "worker ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
