"""Real speech for the voice tests: espeak-ng speaks, sox converts; Whisper loaded once."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.config import Config, build
from appliance.voice.component import VoiceComponent
from appliance.voice.settings import VoiceSettings

SOX_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def speech(speech_dir: Path) -> Callable[..., bytes]:
    """``speech(text, rate=16000, channels=1, pad=(before_s, after_s))`` -> WAV bytes."""

    def make(text: str, rate: int = 16000, channels: int = 1,
             pad: tuple[float, float] = (0.0, 0.0)) -> bytes:
        key = hashlib.sha1(f"{text}|{rate}|{channels}|{pad}".encode()).hexdigest()[:16]
        out = speech_dir / f"{key}.wav"
        if not out.exists():
            raw = speech_dir / f"{key}.espeak.wav"
            subprocess.run(["espeak-ng", "-w", str(raw), text], check=True,
                           timeout=SOX_TIMEOUT_S)
            argv = ["sox", str(raw), "-r", str(rate), "-c", str(channels), "-b", "16", str(out)]
            if pad != (0.0, 0.0):
                argv += ["pad", str(pad[0]), str(pad[1])]
            subprocess.run(argv, check=True, timeout=SOX_TIMEOUT_S)
        return out.read_bytes()

    return make


def voice_config(models_dir: Path, state: Path, **voice: object) -> Config:
    return build({"node": {"models_dir": str(models_dir), "state_dir": str(state),
                           "tier": "edge"},
                  "voice": {"language": "en", **voice}}, source="<test>")


@pytest.fixture(scope="session")
def voice(models_dir: Path, tmp_path_factory: pytest.TempPathFactory,
          ) -> Iterator[VoiceComponent]:
    """One started VoiceComponent (Whisper, piper, Silero loaded) for the whole session."""
    cfg = voice_config(models_dir, tmp_path_factory.mktemp("voice-state"))
    component = VoiceComponent(VoiceSettings.from_config(cfg))
    asyncio.run(component.start())
    yield component
    asyncio.run(component.stop())
