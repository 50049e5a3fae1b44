"""bench/soak.py's short mode keeps working: hostile LAN traffic against a node in use, and
the node neither crashes nor logs a traceback nor loses an acknowledged write. (Its speed
and memory numbers are the benchmark's to report, not this test's to assert.)"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[2]
SOAK_S = 20
#: Model loading twice, warm-up and a control phase, on a loaded 2-core box.
RUN_TIMEOUT_S = 900


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
async def test_the_short_soak_ends_with_no_crash_traceback_or_lost_write(
        models_dir: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(REPO / "bench" / "soak.py"), "--duration", str(SOAK_S),
        "--models-dir", str(models_dir), cwd=REPO, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT_S)
    assert proc.returncode == 0, err.decode()[-3000:]
    result = json.loads(out)
    assert result["crashes"] == 0
    assert result["tracebacks"] == 0, result["traceback_samples"]
    assert result["lost_writes"] == 0 and result["loopback"]["writes_acked"] > 0
    assert result["loopback"]["chats"] > 0 and result["loopback"]["talks"] > 0
    assert result["health"]["failures"] == 0
    # The LAN host got the answers the fixes give, never a 5xx but a busy 503.
    hostile = result["hostile"]
    assert hostile, result
    for action, answers in hostile.items():
        assert not [a for a in answers if a.startswith("5") and a != "503"], (action, answers)
    assert set(hostile.get("unsigned_upload", {})) <= {"401", "503"}
    assert set(hostile.get("deep_json", {})) <= {"400", "503"}
