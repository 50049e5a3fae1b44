"""The LLM benchmarks run as a user runs them (short versions) and print what they promise.

No timing is asserted (this box is shared and noisy): the numbers live in
docs/performance.md. What can fail here: the scripts break, an answer is cut
short, or the hop is not measured the way the doc says (signed, over a LAN).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.llm.conftest import MODEL_FILE

ROOT = Path(__file__).resolve().parents[2]
BENCH_TIMEOUT_S = 240


def run_bench(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=BENCH_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    out: dict[str, Any] = json.loads(done.stdout)
    return out


@pytest.mark.model
@pytest.mark.lan
def test_llm_serving_bench_measures_throughput_and_the_signed_hop(models_dir: Path) -> None:
    out = run_bench("bench/llm_serving.py", "--model", str(models_dir / MODEL_FILE),
                    "--targets", "daemon", "--clients", "1,2", "--rounds", "1",
                    "--tokens", "8", "--hop-n", "5")
    for clients in ("1", "2"):
        r = out["results"]["daemon"][clients]
        assert r["completed_in_full"] == r["requests"] == int(clients), r
        assert r["tokens_per_s"] > 0 and r["ttft_p50_ms"] > 0
    hop = out["hop"]
    assert hop["signed"] is True  # the core in a namespace checked every signature
    assert hop["answered"] == [5, 5]
    assert hop["direct_ttft_p50_ms"] > 0 and hop["via_edge_ttft_p50_ms"] > 0
    assert isinstance(hop["added_p50_ms"], float)


def test_hop_relay_bench_measures_the_edge_alone() -> None:
    out = run_bench("bench/hop_relay.py", "--n", "20")
    assert out["answered"] == [20, 20]
    assert out["direct_ttft_p50_ms"] > 0 and out["via_edge_ttft_p50_ms"] > 0
