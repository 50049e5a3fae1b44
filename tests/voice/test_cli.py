"""`hybrid-agent transcribe` and `hybrid-agent say`, run as the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from appliance.voice.audio import read_wav, rms

pytestmark = pytest.mark.model

CLI_TIMEOUT_S = 120


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S, check=False)


@pytest.fixture
def config(tmp_path: Path, models_dir: Path) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "node": {"models_dir": str(models_dir), "state_dir": str(tmp_path / "state"),
                 "tier": "edge"},
        "voice": {"language": "en", "max_tts_chars": 100}}))
    return str(path)


def test_transcribe_a_44k_stereo_wav(config: str, tmp_path: Path,
                                     speech: Callable[..., bytes]) -> None:
    wav = tmp_path / "q.wav"
    wav.write_bytes(speech("Turn on the kitchen lights please", rate=44100, channels=2))
    done = _cli("transcribe", "--config", config, "--json", str(wav))
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert "kitchen" in data["text"].lower() and data["language"] == "en"
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    done = _cli("transcribe", "--config", config, str(bad))
    assert done.returncode == 1 and "not a WAV" in done.stderr


def test_say_writes_a_wav_and_plays_on_an_alsa_device(config: str, tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    done = _cli("say", "--config", config, "Hello from the box.", "-o", str(out))
    assert done.returncode == 0, done.stderr
    audio = read_wav(out.read_bytes())
    assert audio.rate == 22050 and audio.duration_s > 0.5 and rms(audio.samples) > 0.02
    # ALSA's null device needs no sound card: the real aplay path runs end to end.
    done = _cli("say", "--config", config, "Hello.", "--device", "null")
    assert done.returncode == 0, done.stderr
    done = _cli("say", "--config", config, "Hello.", "--device", "no-such-card")
    assert done.returncode == 1 and "no-such-card" in done.stderr
    done = _cli("say", "--config", config, "x" * 101, "-o", str(out))
    assert done.returncode == 2 and "100 characters" in done.stderr
