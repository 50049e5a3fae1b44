"""The voice models count in readiness: a daemon whose STT or TTS model is missing never says
READY=1, never answers /health with 200, and exits naming voice and the missing file."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.daemon import EXIT_START_FAILED

pytestmark = pytest.mark.model

#: Failing fast is the point, but the process still imports and loads the other models.
EXIT_TIMEOUT_S = 120.0
HEALTH_TIMEOUT_S = 5.0


async def _health_while_running(d: Any) -> list[int]:
    """Every /health status seen until the daemon process exits (refused connects skipped)."""
    seen: list[int] = []
    async with aiohttp.ClientSession() as http:
        while d.proc.returncode is None:
            try:
                async with http.get(f"{d.url}/health",
                                    timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT_S)) as r:
                    seen.append(r.status)
            except (aiohttp.ClientError, TimeoutError):
                pass  # not listening yet, or already gone
            # Poll, or return as soon as the process exits, whichever comes first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(d.proc.wait()), 0.05)
    return seen


@pytest.mark.parametrize("missing", ["stt_model", "tts_voice"])
async def test_a_missing_voice_model_keeps_the_daemon_from_becoming_ready(
        daemon_factory, models_dir: Path, tmp_path: Path, missing: str) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    path = empty if missing == "stt_model" else empty / "en_US-joe-medium.onnx"
    d = await daemon_factory(wait_ready=False, node={"models_dir": str(models_dir)},
                             voice={"enabled": True, "language": "en", missing: str(path)})
    health = await asyncio.wait_for(_health_while_running(d), EXIT_TIMEOUT_S)
    assert await d.wait() == EXIT_START_FAILED
    assert 200 not in health, health
    messages = [m for _, m in d.notify.messages]
    assert not any("READY=1" in m.splitlines() for m in messages), messages
    # systemd's STATUS= and the log say which component failed and which file is missing.
    failed = [line for m in messages for line in m.splitlines()
              if line.startswith("STATUS=failed")]
    assert failed, messages
    wanted = "model.bin" if missing == "stt_model" else "en_US-joe-medium.onnx"
    assert "voice failed to start" in failed[0] and wanted in failed[0], failed
    assert str(empty) in failed[0] and missing in failed[0], failed
    assert "voice failed to start" in d.log()
