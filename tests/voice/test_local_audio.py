"""The conversation on the box's own microphone and speaker (voice.input / voice.output).

The microphone is the FAKE of tests/support/fake_audio.py (no sound card here);
the speaker is the real ``aplay`` on ALSA's ``null`` device.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.voice.component import VoiceComponent
from appliance.voice.settings import VoiceSettings
from tests.support.fake_audio import FakeMicrophone, wav_to_pcm16
from tests.voice.conftest import voice_config

pytestmark = pytest.mark.model

WAIT_S = 60.0


async def _until(voice: VoiceComponent, kind: str) -> dict[str, Any]:
    """The first local event of ``kind``, waiting for it at most WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for event in list(voice.microphone.events):
            if event["type"] == kind:
                return event
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind} event in {list(voice.microphone.events)}")


async def test_the_box_hears_its_microphone_and_speaks_on_its_speaker(
        models_dir: Path, tmp_path: Path, speech: Callable[..., bytes],
        caplog: pytest.LogCaptureFixture) -> None:
    mics = [FakeMicrophone().silence(0.3)
            .speech(wav_to_pcm16(speech("What time is it?"))).silence(1.0)]

    def microphone() -> FakeMicrophone:
        return mics.pop(0) if mics else FakeMicrophone().silence(600)

    # No wake word: every utterance is a turn, as on a box configured for always-on listening.
    cfg = voice_config(models_dir, tmp_path, input="fake-card", output="null", wake_words=[])
    voice = VoiceComponent(VoiceSettings.from_config(cfg), None, microphone=microphone)
    await voice.start()
    try:
        transcript = await _until(voice, "transcript")
        assert "time" in transcript["text"].lower()
        error = await _until(voice, "error")
        assert error["code"] == "no_llm_available"
        assert voice.healthy()
        assert voice.describe()["local"][0]["type"] == "transcript"
        await voice.announcer.announce("Your tea timer is done.")  # returns once aplay took it
        audio = await _until(voice, "audio")
        assert audio["text"] == "Your tea timer is done." and audio["samples"] > 10000
        speaker = voice.microphone.output
        assert speaker is not None and speaker.bytes_written == 2 * audio["samples"]
        # aplay played all of it and exited cleanly once its input ended (a device it
        # cannot open makes it exit with status 1: tests/voice/test_audio.py).
        assert await asyncio.wait_for(speaker.finish(), WAIT_S) == 0
    finally:
        await voice.stop()
    assert voice.stats["announcements"] == 1 and not speaker.running
    # aplay on the null device took the audio: no playback or announcement failure logged.
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
