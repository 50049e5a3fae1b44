"""Fixtures for the installer's unit-level tests."""

from __future__ import annotations

from pathlib import Path

import pytest

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
