"""/metrics exports how fast the voice models run: seconds, audio seconds, real-time factor."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.metrics import samples
from tests.voice.test_voice_api import _post, _voice

pytestmark = pytest.mark.model


async def test_voice_metrics_after_one_transcription_and_one_synthesis(
        daemon_factory: Any, models_dir: Path, speech: Callable[..., bytes]) -> None:
    d = await daemon_factory(**_voice(models_dir, wake_words=[]))
    status, _, _ = await _post(f"{d.url}/api/tts", json={"text": "The lights are on."})
    assert status == 200
    status, data, _ = await _post(f"{d.url}/api/stt", data=speech("Good morning"),
                                  headers={"Content-Type": "audio/wav"})
    assert status == 200, data
    async with aiohttp.ClientSession() as s, s.get(d.url + "/metrics") as r:
        text = await r.text()
    values = samples(text)
    for kind in ("stt", "tts"):
        # The warm-up at start is not counted: exactly the one request of each kind.
        assert values[f'hybrid_agent_voice_inference_seconds_count{{kind="{kind}"}}'] == 1
        assert values[f'hybrid_agent_voice_real_time_factor_count{{kind="{kind}"}}'] == 1
        assert values[f'hybrid_agent_voice_audio_seconds_total{{kind="{kind}"}}'] > 0.3
        took = values[f'hybrid_agent_voice_inference_seconds_sum{{kind="{kind}"}}']
        audio = values[f'hybrid_agent_voice_audio_seconds_total{{kind="{kind}"}}']
        rtf = values[f'hybrid_agent_voice_real_time_factor_sum{{kind="{kind}"}}']
        assert rtf == pytest.approx(took / audio, rel=1e-6)
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool (Debian's prometheus package) is not installed"
    check = await asyncio.to_thread(subprocess.run, [promtool, "check", "metrics"],
                                    input=text, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check
