"""commands.wait_ready: visible progress until the unit is active and /health answers 200.

/health is a real HTTP server on loopback. This box has no systemd as PID 1, so
FAKE_SYSTEMCTL and FAKE_JOURNALCTL (hand-written, on PATH first) stand in for the
unit: they answer from files the test changes when the installer reports a state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from installer import InstallError, commands

POLL_S = 0.05
NOT_READY_ANSWERS = 2
JOURNAL_LINE = "hybrid-agent[812]: config error: unknown key 'foo' in /etc/hybrid-agent/config.yaml"

FAKE_SYSTEMCTL = """#!/bin/sh
case "$1" in
  is-active) cat "{unit}/active"; [ "$(cat "{unit}/active")" = active ] ;;
  show) cat "{unit}/$3" ;;
  *) echo "fake systemctl: unexpected $*" >&2; exit 99 ;;
esac
"""
FAKE_JOURNALCTL = """#!/bin/sh
echo "$*" > "{unit}/journalctl.args"
echo "{line}"
"""


class Unit:
    """The fake unit's state, as FAKE_SYSTEMCTL reports it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.set(active="activating", StatusText="loading whisper-base", InvocationID="new")

    def set(self, **props: str) -> None:
        for name, value in props.items():
            (self.root / name).write_text(value + "\n")


@pytest.fixture
def unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Unit:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("systemctl", FAKE_SYSTEMCTL), ("journalctl", FAKE_JOURNALCTL)):
        (bin_dir / name).write_text(text.format(unit=tmp_path, line=JOURNAL_LINE))
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return Unit(tmp_path)


@pytest.fixture
def health() -> Iterator[tuple[int, list[int]]]:
    """A /health that answers 503 NOT_READY_ANSWERS times, then 200; its port and answers."""
    answers: list[int] = []

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = 503 if len(answers) < NOT_READY_ANSWERS else 200
            answers.append(code)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, args=(POLL_S,),
                              daemon=True)
    thread.start()
    try:
        yield server.server_address[1], answers
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_progress_lines_until_active_and_health_200(
        unit: Unit, health: tuple[int, list[int]]) -> None:
    port, answers = health
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        if len(said) == 1:  # the installer has shown "activating": now the unit comes up
            unit.set(active="active", StatusText="ready: listening on :8700")

    commands.wait_ready(port, say, timeout_s=60, poll_s=POLL_S)
    assert said == [
        "  waiting for hybrid-agent: activating; loading whisper-base",
        "  waiting for hybrid-agent: active; ready: listening on :8700; /health 503",
        "  hybrid-agent is ready: ready: listening on :8700",
    ]
    assert answers == [503] * NOT_READY_ANSWERS + [200]


def test_the_invocation_before_a_restart_does_not_count(
        unit: Unit, health: tuple[int, list[int]]) -> None:
    port, answers = health
    unit.set(active="active", StatusText="ready (the old one)", InvocationID="old")
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        if len(said) == 1:
            unit.set(StatusText="ready (the new one)", InvocationID="new")

    commands.wait_ready(port, say, timeout_s=60, stale="old", poll_s=POLL_S)
    assert said[0] == "  waiting for hybrid-agent: active; ready (the old one)"
    assert said[-1] == "  hybrid-agent is ready: ready (the new one)"
    assert answers[-1] == 200 and len(answers) == NOT_READY_ANSWERS + 1  # none for "old"


def test_a_unit_that_fails_ends_the_wait_with_the_journal(unit: Unit) -> None:
    unit.set(active="failed", StatusText="")
    said: list[str] = []
    with pytest.raises(InstallError) as info:
        commands.wait_ready(None, said.append, timeout_s=60, poll_s=POLL_S)
    assert str(info.value).startswith("hybrid-agent did not start (failed). Last journal lines:")
    assert JOURNAL_LINE in str(info.value)
    assert (unit.root / "journalctl.args").read_text().startswith("-u hybrid-agent.service -n ")
    assert said == ["  waiting for hybrid-agent: failed; -"]
