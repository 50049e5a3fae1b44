"""bench/rpc_split.py runs as its doc says (a short version) and prints what it promises.

No timing is asserted (the numbers live in docs/performance.md); what can fail: the
script breaks, an answer is cut short, the split is not a split, or the link's bytes
are not counted where they cross.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.llm.conftest import MODEL_FILE

ROOT = Path(__file__).resolve().parents[2]
BENCH_TIMEOUT_S = 400

pytestmark = [pytest.mark.lan, pytest.mark.model]


def test_the_split_bench_measures_both_sides_and_the_link(models_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/rpc_split.py", "--model", str(models_dir / MODEL_FILE),
         "--rounds", "2", "--tokens", "6"],
        cwd=ROOT, capture_output=True, text=True, timeout=BENCH_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    for target in ("local", "split"):
        assert out[target]["requests"] == 2
        assert out[target]["tokens_per_request"] == [6, 6]
        assert all(rate > 0 for rate in out[target]["tokens_per_s"])
    places = {p["where"]: p for p in out["placement"]["places"]}
    assert places["local"]["count"] > 0 and places["worker-w"]["count"] > 0
    # Only the split's requests cross the link; each token moves a hidden state at least
    # (576 floats there and back for SmolLM2), and no logits (49152 floats).
    assert out["link_bytes_local_requests"] == [0, 0]
    assert 2 * 576 * 4 < out["link_bytes_per_token_median"] < 49152 * 4
    assert out["load_s"]["split"] > 0 and out["load_s"]["alone"] > 0
    assert out["split_vs_local"]["tokens_per_s_ratio"] > 0
    assert len(out["loadavg_before"]) == 3
