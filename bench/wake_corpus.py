"""Speech for bench/wake.py: wake phrases by many voices, hours of other speech, and noise.

Voices: piper (the shipped en_US-joe-medium at three speeds, each also shifted
three semitones down and up with sox, which moves pitch and formants like
another speaker), espeak-ng (eight voices and variants at two speeds) and flite
(four voices, when installed). Noise at 10 dB SNR: pink and brown (above
60 Hz, so all of it is audible), and babble (three other passages at once).
Everything is 16 kHz int16 and cached under
``<cache>/wake/`` keyed by its recipe, so a second run synthesizes nothing.

    .venv/bin/python bench/wake_corpus.py [--hours 1.0] [--short]   # fill the cache
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from appliance.voice.audio import PIPELINE_RATE, read_wav, resample, write_wav

DEFAULT_CACHE = "/var/cache/hybrid-agent-test"
DEFAULT_MODELS = "/var/cache/hybrid-agent-test/models"
PIPER_VOICE = "piper/en_US-joe-medium.onnx"
RATE = PIPELINE_RATE
SNR_DB = 10.0
#: Pink and brown noise start here; version of the noise recipe, part of the cache keys.
NOISE_LOW_HZ = 60.0
NOISE_VERSION = "n2"
NOISES = ("pink", "brown", "babble")
#: Silence around a wake phrase clip, so the detector sees its start and end.
PAD_BEFORE_S, PAD_AFTER_S = 0.5, 1.0
#: Long passages are stored in files of about this length.
PART_S = 300.0
SHORT_PART_S = 30.0
#: How each wake word is said, and the sentences it is said in.
PHRASES = {"okay_nabu": "Okay Nabu", "hey_jarvis": "Hey Jarvis", "hey_mycroft": "Hey Mycroft",
           "alexa": "Alexa", "hey_rhasspy": "Hey Rhasspy"}
CARRIERS = ("{p}.", "{p}, what time is it?")
#: Near misses sprinkled through the non-wake speech.
CONFUSABLES = ("Okay, now we will see.", "Okay, Nadia, come here.", "Oh, Canada.",
               "Hey, Travis, how are you?", "Hey, Jarvie.", "Hey Microsoft, hello.",
               "Hey, my crafts are ready.", "Alexander said hello.", "Alex, I said no.",
               "A Lexus and an Electra.", "Hey, Rasputin.", "Okay, an aboo.")
TEXT_DIR = Path("/usr/share/common-licenses")


@dataclass(frozen=True)
class Voice:
    """One way of speaking: engine, voice name, speed (1 = normal) and a pitch shift."""

    engine: str
    name: str
    speed: float = 1.0
    cents: int = 0

    @property
    def label(self) -> str:
        shift = f"{self.cents:+d}c" if self.cents else ""
        return f"{self.engine}:{self.name}@{self.speed:g}{shift}"


PIPER_VOICES = [Voice("piper", "joe", s, c) for s in (0.8, 1.0, 1.25) for c in (-300, 0, 300)]
ESPEAK_VOICES = [Voice("espeak", v, s) for v in ("en-us", "en-gb", "en-gb-scotland", "en-029",
                                                 "en-gb-x-rp", "en-us+f2", "en-us+m3",
                                                 "en-us+f4") for s in (0.85, 1.15)]
FLITE_VOICES = [Voice("flite", v) for v in ("kal16", "slt", "rms", "awb")]


def all_voices(short: bool = False) -> list[Voice]:
    if short:
        return [PIPER_VOICES[4], PIPER_VOICES[0], ESPEAK_VOICES[0], ESPEAK_VOICES[5]]
    return PIPER_VOICES + ESPEAK_VOICES + (FLITE_VOICES if shutil.which("flite") else [])


class Speaker:
    """Synthesizes text with any :class:`Voice` to 16 kHz int16."""

    def __init__(self, models: Path) -> None:
        from piper import PiperVoice

        path = models / PIPER_VOICE
        self._piper = PiperVoice.load(path, Path(f"{path}.json"))
        self._tmp = Path(tempfile.mkdtemp(prefix="wake-corpus-"))

    def say(self, voice: Voice, text: str) -> np.ndarray:
        if voice.engine == "piper":
            from piper import SynthesisConfig

            cfg = SynthesisConfig(length_scale=1.0 / voice.speed)
            parts = [c.audio_int16_array for c in self._piper.synthesize(text, syn_config=cfg)]
            pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
            rate = int(self._piper.config.sample_rate)
            wav = self._tmp / "piper.wav"
            wav.write_bytes(write_wav(pcm, rate))
        elif voice.engine == "espeak":
            wav = self._tmp / "espeak.wav"
            subprocess.run(["espeak-ng", "-v", voice.name, "-s", str(round(175 * voice.speed)),
                            "-w", str(wav), text], check=True, timeout=600)
        else:
            wav = self._tmp / "flite.wav"
            subprocess.run(["flite", "-voice", voice.name, "--setf",
                            f"duration_stretch={1.0 / voice.speed:.3f}", "-t", text,
                            "-o", str(wav)], check=True, timeout=600)
        if voice.cents:
            shifted = self._tmp / "shifted.wav"
            subprocess.run(["sox", str(wav), str(shifted), "pitch", str(voice.cents)],
                           check=True, timeout=600)
            wav = shifted
        audio = read_wav(wav.read_bytes())
        return to_int16(resample(audio.samples, audio.rate, RATE))

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


# ---------------------------------------------------------------- noise


def noise(kind: str, n: int, seed: int, babble: np.ndarray | None = None) -> np.ndarray:
    """``n`` float32 samples of pink or brown noise, or babble cut from ``babble`` speech."""
    rng = np.random.default_rng(seed)
    if kind == "babble":
        assert babble is not None and len(babble) > n
        starts = rng.integers(0, len(babble) - n, 3)
        x = sum(babble[s:s + n].astype(np.float32) for s in starts)
        return np.asarray(x, np.float32)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / RATE)
    freqs[0] = freqs[1]
    spectrum /= np.sqrt(freqs) if kind == "pink" else freqs
    # Only audible noise counts toward the SNR: below NOISE_LOW_HZ, 1/f noise would put
    # much of its power where neither a microphone nor a detector hears anything.
    spectrum[freqs < NOISE_LOW_HZ] = 0
    return np.fft.irfft(spectrum, n).astype(np.float32)


def mix(speech: np.ndarray, noise_: np.ndarray, snr_db: float = SNR_DB) -> np.ndarray:
    """``speech`` (int16) plus ``noise_`` scaled to ``snr_db`` below the speech's active level."""
    x = speech.astype(np.float32)
    power = active_power(x)
    scale = np.sqrt(power / (10 ** (snr_db / 10)) / max(np.mean(noise_ ** 2), 1e-12))
    return to_int16((x + noise_[: len(x)] * scale) / 32768.0)


def active_power(x: np.ndarray) -> float:
    """Mean power over the 10 ms frames within 30 dB of the loudest: the speech, not pauses."""
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    energy = np.mean(frames ** 2, axis=1)
    return float(np.mean(energy[energy > energy.max() / 1000])) if len(energy) else 0.0


def to_int16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def speech_end_s(pcm: np.ndarray) -> float:
    """End of the last loud 10 ms (within 30 dB of the loudest) of a clean clip."""
    x = pcm.astype(np.float32)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    energy = np.mean(frames ** 2, axis=1)
    loud = np.nonzero(energy > energy.max() / 1000)[0]
    return float(loud[-1] + 1) * 0.01


# ---------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Clip:
    """One wake phrase clip: which word, how it was said, with which noise, where it ends."""

    word: str
    voice: str
    text: str
    noise: str
    path: str
    phrase_end_s: float | None


class Corpus:
    """The cached positives and negatives under ``<cache>/wake``."""

    def __init__(self, cache: Path, models: Path, *, short: bool = False) -> None:
        self.root = cache / "wake"
        self.models = models
        self.short = short
        self.part_s = SHORT_PART_S if short else PART_S
        self._speaker: Speaker | None = None

    @property
    def speaker(self) -> Speaker:
        if self._speaker is None:
            self._speaker = Speaker(self.models)
        return self._speaker

    def close(self) -> None:
        if self._speaker is not None:
            self._speaker.close()

    def positives(self, word: str) -> list[Clip]:
        """Every voice saying ``word`` in each carrier sentence, clean and in each noise."""
        voices = all_voices(self.short)
        carriers = CARRIERS[:1] if self.short else CARRIERS
        noises = ("clean", "pink") if self.short else ("clean", *NOISES)
        babble = self.negatives_audio(limit_s=120.0) if "babble" in noises else None
        clips: list[Clip] = []
        for vi, voice in enumerate(voices):
            for ci, carrier in enumerate(carriers):
                text = carrier.format(p=PHRASES[word])
                base = self._cached(f"pos-{word}-{voice.label}-{text}",
                                    lambda v=voice, t=text: self._padded(v, t))
                # Where the wake phrase ends is known when it is said alone (the latency clips).
                end = PAD_BEFORE_S + speech_end_s(base[int(PAD_BEFORE_S * RATE):]) \
                    if carrier == "{p}." else None
                for noise_kind in noises:
                    if noise_kind == "clean":
                        path = self._path(f"pos-{word}-{voice.label}-{text}")
                    else:
                        key = f"pos-{word}-{voice.label}-{text}-{noise_kind}-{NOISE_VERSION}"
                        seed = vi * 100 + ci * 10 + NOISES.index(noise_kind)
                        self._cached(key, lambda b=base, k=noise_kind, s=seed: mix(
                            b, noise(k, len(b), s, babble)))
                        path = self._path(key)
                    clips.append(Clip(word, voice.label, text, noise_kind, str(path), end))
        return clips

    def negatives(self, hours: float) -> list[Path]:
        """Files of non-wake speech (half of it in noise) and some noise alone, ``hours`` long."""
        want_s = hours * 3600.0
        parts: list[Path] = []
        total = 0.0
        for i, (key, make) in enumerate(self._negative_recipes()):
            if total >= want_s:
                break
            pcm = self._cached(key, make)
            parts.append(self._path(key))
            total += len(pcm) / RATE
            _progress(f"non-wake audio: {total / 60:.1f} of {want_s / 60:.0f} min ({i + 1} parts)")
        return parts

    def negatives_audio(self, limit_s: float) -> np.ndarray:
        """The first ``limit_s`` of clean non-wake speech (for babble)."""
        key, make = next(self._speech_recipes())
        return self._cached(key, make)[: int(limit_s * RATE) + RATE]

    # ------------------------------------------------------------ recipes

    def _negative_recipes(self) -> Iterator[tuple[str, object]]:
        speech = self._speech_recipes()
        for i, (key, make) in enumerate(speech):
            yield key, make
            if i % 2 == 0:  # every other passage again, in noise
                kind = NOISES[(i // 2) % len(NOISES)]
                babble = self.negatives_audio(limit_s=self.part_s) if kind == "babble" else None
                yield f"{key}-{kind}-{NOISE_VERSION}", (
                    lambda k=key, m=make, kind=kind, b=babble, s=i:
                    mix(self._cached(k, m), noise(kind, len(self._cached(k, m)), s, b)))
            if i % 6 == 5:  # and now and then, noise alone
                kind = ("pink", "brown")[(i // 6) % 2]
                yield f"noise-{kind}-{i}-{NOISE_VERSION}", (lambda kind=kind, s=i: to_int16(
                    _normalise(noise(kind, int(min(60.0, self.part_s) * RATE), s), 0.05)))

    def _speech_recipes(self) -> Iterator[tuple[str, object]]:
        """Passages of about PART_S, each by the next voice in turn."""
        voices = all_voices(self.short)
        sentences = _sentences()
        part: list[str] = []
        n = 0
        words_per_part = int(self.part_s * 2.5)  # about 150 words a minute
        for i, sentence in enumerate(sentences):
            part.append(sentence)
            if i % 25 == 0:
                part.append(CONFUSABLES[(i // 25) % len(CONFUSABLES)])
            if sum(len(s.split()) for s in part) >= words_per_part:
                voice = voices[n % len(voices)]
                text = " ".join(part)
                yield (f"neg-{n}-{voice.label}-{_digest(text)}",
                       (lambda v=voice, t=text: self._say_long(v, t)))
                part, n = [], n + 1

    def _say_long(self, voice: Voice, text: str) -> np.ndarray:
        # Paragraph by paragraph: piper and espeak handle long input, but progress helps.
        pieces = re.findall(r"[^.!?]+[.!?]?", text)
        out: list[np.ndarray] = []
        for j in range(0, len(pieces), 8):
            out.append(self.speaker.say(voice, " ".join(pieces[j:j + 8])))
            out.append(np.zeros(int(0.4 * RATE), np.int16))
        return np.concatenate(out)

    def _padded(self, voice: Voice, text: str) -> np.ndarray:
        pcm = self.speaker.say(voice, text)
        return np.concatenate([np.zeros(int(PAD_BEFORE_S * RATE), np.int16), pcm,
                               np.zeros(int(PAD_AFTER_S * RATE), np.int16)])

    # ------------------------------------------------------------ the cache

    def _path(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.@+-]+", "_", key)[:80]
        return self.root / f"{safe}-{_digest(key)}.wav"

    def _cached(self, key: str, make: object) -> np.ndarray:
        path = self._path(key)
        if path.exists():
            return read_pcm(path)
        pcm = make()  # type: ignore[operator]
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(write_wav(pcm, RATE))
        os.replace(tmp, path)
        return pcm


def read_pcm(path: Path) -> np.ndarray:
    """A cached 16 kHz WAV as int16."""
    audio = read_wav(path.read_bytes())
    return to_int16(audio.samples)


def _sentences() -> list[str]:
    """English prose present on every Debian box: the common licence texts."""
    out: list[str] = []
    for path in sorted(TEXT_DIR.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        text = re.sub(r"\s+", " ", path.read_text(errors="replace"))
        text = re.sub(r"[^A-Za-z0-9,.;:!?'() -]", " ", text)
        out.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+", text)
                   if 3 <= len(s.split()) <= 60)
    for word in ("nabu", "jarvis", "mycroft", "alexa", "rhasspy"):
        assert not any(word in s.lower() for s in out), word
    return out


def _normalise(x: np.ndarray, rms_level: float) -> np.ndarray:
    return x * (rms_level / max(float(np.sqrt(np.mean(x ** 2))), 1e-12))


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _progress(message: str) -> None:
    print(f"wake corpus: {message}", file=sys.stderr, flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=os.environ.get("HYBRID_AGENT_TEST_CACHE", DEFAULT_CACHE))
    p.add_argument("--models", default=os.environ.get("HYBRID_AGENT_TEST_MODELS",
                                                      DEFAULT_MODELS))
    p.add_argument("--hours", type=float, default=1.0, help="non-wake audio to make")
    p.add_argument("--short", action="store_true", help="a few voices, one word")
    p.add_argument("--words", default=",".join(PHRASES))
    args = p.parse_args()
    corpus = Corpus(Path(args.cache), Path(args.models), short=args.short)
    try:
        summary = {}
        for word in args.words.split(","):
            clips = corpus.positives(word)
            summary[word] = len(clips)
            _progress(f"{word}: {len(clips)} clips")
        parts = corpus.negatives(args.hours)
        seconds = sum(len(read_pcm(p)) for p in parts) / RATE
    finally:
        corpus.close()
    print(json.dumps({"positives": summary, "negative_parts": len(parts),
                      "negative_s": round(seconds, 1),
                      "voices": [asdict(v) for v in all_voices(args.short)]}, indent=2))


if __name__ == "__main__":
    main()
