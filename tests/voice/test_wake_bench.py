"""bench/wake.py runs as a user runs it (its short version) and reports what it promises.

No number is asserted against its target (this box is shared and noisy): the
targets and the measured numbers live in docs/performance.md. What can fail
here: the script breaks, a clean wake phrase is missed, the daemon's
hands-free socket never wakes, or the whole turn is not heard.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
BENCH_TIMEOUT_S = 540


@pytest.mark.timeout(BENCH_TIMEOUT_S + 30)
def test_the_short_wake_bench_measures_cost_detection_and_the_hands_free_turn(
        models_dir: Path) -> None:
    done = subprocess.run([sys.executable, "bench/wake.py", "--short", "--engines",
                           "cascade", "--models", str(models_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=BENCH_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["bench"] == "wake" and out["short"] is True and len(out["load_average"]) >= 2
    micro = out["engines"]["cascade"]  # the default engine
    assert micro["package"] == "pymicro-wakeword + pyopen-wakeword", micro["package"]
    assert "okay_nabu" in micro["words"]
    assert micro["cpu_pct_of_one_core"]["silence"] > 0 and micro["added_rss_mb"] >= 0
    word = micro["words"]["okay_nabu"]
    # Every clean phrase, whoever says it, wakes the detector; noisy ones are counted.
    clean = word["by"]["noise:clean"].split("/")
    assert clean[0] == clean[1] and int(clean[1]) >= 4, word
    assert word["phrases"] == 8 and word["decision_latency_s"]["p50"] > 0
    assert word["non_wake_hours"] > 0 and word["false_accepts_per_hour"] is not None
    daemon = out["daemon"]
    assert daemon["engine"] == "cascade"
    assert set(daemon["daemon_cpu_pct_of_one_core"]) == {"no_client", "silence", "speech"}
    latency = daemon["wake_event_latency_s"]
    assert latency["woken"] == latency["runs"] == 2 and latency["p50"] > 0, latency
    turn = daemon["turn"]["runs"][0]
    assert turn.get("woke") is True and "time" in turn["heard"].lower(), turn
    assert turn["end_of_speech_to_first_audio_s"] > 0, turn
