"""bench/tts_pace.py runs as its doc says (a short version) and prints what it promises.

No timing is asserted (the numbers live in docs/performance.md). What can fail
here: the script breaks, the voice is not really put in a limited CPU cgroup,
or a way's audio is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_pace_bench_plays_each_way_on_a_limited_cpu(models_dir: Path) -> None:
    done = subprocess.run([sys.executable, "bench/tts_pace.py", "--models", str(models_dir),
                           "--shares", "1,0.5", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["answers"] == 4 and out["rounds"] == 1
    for share in ("share_1.0", "share_0.5"):
        for way in ("whole", "cut", "paced"):
            got = out[share][way]
            assert got["first_s"] > 0 and got["end_s"] >= got["first_s"], (share, way, got)
            assert got["stall_s"] >= 0 and 0 <= got["stalled_share"] <= 1
            # Whole: one array a sentence (the answers have 1 and 2 sentences).
            assert got["answer1"]["pieces"] >= 1 and got["answer2"]["pieces"] >= 2
        # The short answer (110 frames) whole before pacing, cut once paced.
        assert out[share]["cut"]["answer1"]["pieces"] == 1
        assert out[share]["paced"]["answer1"]["pieces"] >= 2
    # The limited voice ran in the bench's own cgroup, the free one did not; and the
    # group is gone after.
    assert "hybrid-agent-bench-" in out["share_0.5"]["cgroup"]
    assert "hybrid-agent-bench-" not in out["share_1.0"]["cgroup"]
    for root in (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")):
        assert not list(root.glob("hybrid-agent-bench-*"))
