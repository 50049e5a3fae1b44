"""bench/footprint.py runs as a user runs it and measures what it promises (no size is
asserted: the numbers live in docs/performance.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.model


def test_footprint_bench_measures_one_daemon_against_five_services(models_dir: Path) -> None:
    done = subprocess.run([sys.executable, "bench/footprint.py", "--models", str(models_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    sep = out["separate"]
    services = ("stt", "tts", "agent_web", "tool_server", "world_model")
    assert all(sep[name]["pss_mb"] > 0 for name in services)
    # Both set-ups really transcribed what they synthesised.
    for heard in (out["one_daemon"]["heard"], sep["heard"]):
        assert "timer" in heard.lower() and "kitchen" in heard.lower(), heard
    total = round(sum(sep[name]["pss_mb"] for name in services), 1)
    assert out["summary"]["separate_pss_mb"] == total
    assert out["summary"]["one_daemon_pss_mb"] == out["one_daemon"]["edge_daemon"]["pss_mb"]
    # The loaded daemon holds more than the bare one: the models were really loaded.
    assert out["one_daemon"]["edge_daemon"]["pss_mb"] > 2 * out["bare_daemon"]["pss_mb"]
