"""commands.run(stream=True), how pip's progress (a llama-cpp-python build takes minutes)
reaches the user: each line as it comes, not all at the end."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from installer import InstallError, commands

WAIT_S = 60
# Prints a line, then waits until the installer has shown it before going on: were the
# output held back until the end, it would wait in vain and exit 3.
CHILD = f"""
import pathlib, sys, time
print("Building wheel for llama-cpp-python (pyproject.toml): started", flush=True)
marker = pathlib.Path(sys.argv[1])
deadline = time.monotonic() + {WAIT_S}
while not marker.exists():
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.02)
print("Building wheel for llama-cpp-python (pyproject.toml): finished", flush=True)
"""


class Screen(io.StringIO):
    """stdout that touches ``marker`` once the first build line is on it."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = marker

    def write(self, text: str) -> int:
        if "started" in text:
            self.marker.touch()
        return super().write(text)


def test_each_line_is_shown_while_the_command_still_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "shown"
    screen = Screen(marker)
    monkeypatch.setattr(sys, "stdout", screen)
    out = commands.run([sys.executable, "-c", CHILD, str(marker)], "pip install", stream=True,
                     timeout=WAIT_S * 2)
    assert screen.getvalue().splitlines() == [
        "    Building wheel for llama-cpp-python (pyproject.toml): started",
        "    Building wheel for llama-cpp-python (pyproject.toml): finished"]
    assert out.endswith("finished\n")


def test_a_failing_command_ends_with_its_last_lines(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    child = "print('ERROR: No matching distribution found for llama-cpp-python'); exit(1)"
    with pytest.raises(InstallError) as info:
        commands.run([sys.executable, "-c", child], "pip install", stream=True)
    assert str(info.value) == ("pip install failed (exit 1):\n"
                               "ERROR: No matching distribution found for llama-cpp-python")


def test_a_command_past_its_time_limit_is_killed_even_while_its_output_is_open() -> None:
    # It prints, then holds its output open: reading it alone would wait forever.
    child = "import sys, time; print('working', flush=True); time.sleep(600)"
    with pytest.raises(InstallError, match="took longer than 1 s"):
        commands.run([sys.executable, "-c", child], "apt-get install", stream=True, timeout=1)
