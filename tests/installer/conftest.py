"""Fixtures for the installer's unit-level tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from installer import Paths

REPO = Path(__file__).resolve().parents[2]

# STAND-IN for systemctl where a test drives the installer against a temp root: the
# real one would act on this box's own services (or, without systemd as PID 1, fail).
RECORDING_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "{log}"
"""


@pytest.fixture
def systemctl_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a systemctl that only records its arguments first on PATH; the record's path."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.calls"
    (bin_dir / "systemctl").write_text(RECORDING_SYSTEMCTL.format(log=log))
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin")
    return log


def install_command(paths: Paths) -> Path:
    """The venv's ``hybrid-agent`` under a test's root, as an install leaves it: this
    checkout's real CLI (the installer reaches the config module through it)."""
    exe = paths.command
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m appliance.cli \"$@\"\n")
    exe.chmod(0o755)
    return exe

