"""Wake words: the models shipped inside pymicro-wakeword and pyopen-wakeword, on a live stream.

A :class:`WakeDetector` is fed 16 kHz 16-bit mono PCM in chunks of any size
and returns a :class:`Detection` when one of its words was said. Each stream
needs its own detector (the models are stateful); building one takes a few
milliseconds and about a megabyte. Detection is blocking (TensorFlow Lite
through ctypes) and meant to run in a worker thread.

Two engines, chosen by ``voice.wake_engine`` and measured in bench/wake.py
(docs/performance.md): microWakeWord (the default: under 1 % of one core for
four words, decides about 0.15 s after the phrase) and openWakeWord (about 8 %,
0.44 s; more robust in noise for some words, and it knows hey_rhasspy).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from appliance.voice.audio import PIPELINE_RATE
from appliance.voice.errors import ModelLoadError

MICRO = "microwakeword"
OPEN = "openwakeword"
#: After a detection, the detector ignores this much audio: one phrase wakes once.
REFRACTORY_S = 1.0
#: openWakeWord's own suggested threshold for its shipped models.
OPEN_THRESHOLD = 0.5
#: Neutral sensitivity: the model's tuned threshold.
DEFAULT_SENSITIVITY = 0.5
#: The threshold at sensitivity 0 (almost never wakes).
STRICTEST = 0.99
PHRASES = {"okay_nabu": "Okay Nabu", "hey_jarvis": "Hey Jarvis", "hey_mycroft": "Hey Mycroft",
           "alexa": "Alexa", "hey_rhasspy": "Hey Rhasspy"}


@dataclass(frozen=True)
class Detection:
    """``word`` was heard; ``end_s`` is the stream time (seconds fed) at which it was decided."""

    word: str
    phrase: str
    score: float
    end_s: float


class WakeDetector(Protocol):
    """Streaming detection of a set of wake words."""

    words: tuple[str, ...]
    thresholds: dict[str, float]

    def feed(self, pcm: bytes) -> list[Detection]:
        """16 kHz 16-bit mono PCM, any length; the detections it completed."""
        ...

    def close(self) -> None: ...


def threshold(default: float, sensitivity: float) -> float:
    """The probability cutoff for ``sensitivity`` in [0, 1]: 0.5 is the model's ``default``,
    0 is STRICTEST, 1 is half the default; linear in between."""
    if sensitivity <= DEFAULT_SENSITIVITY:
        return STRICTEST + (default - STRICTEST) * sensitivity / DEFAULT_SENSITIVITY
    return default - default / 2 * (sensitivity - DEFAULT_SENSITIVITY) / DEFAULT_SENSITIVITY


def open_detector(engine: str, words: Sequence[str],
                  sensitivity: dict[str, float] | None = None) -> WakeDetector:
    """A fresh detector for ``words`` with ``engine``; ModelLoadError if it cannot load."""
    sensitivity = sensitivity or {}
    if not words:
        raise ModelLoadError("no wake words to listen for (voice.wake_words is empty)")
    try:
        if engine == MICRO:
            return MicroDetector(words, sensitivity)
        if engine == OPEN:
            return OpenDetector(words, sensitivity)
    except ImportError as exc:
        package = "pymicro-wakeword" if engine == MICRO else "pyopen-wakeword"
        raise ModelLoadError(f"wake word engine {engine} is not installed ({exc}); "
                             f"pip install {package}") from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load the {engine} wake word models "
                             f"{', '.join(words)}: {exc}") from exc
    raise ModelLoadError(f"unknown wake word engine {engine!r}; expected {MICRO} or {OPEN}")


class _Refractory:
    """Stream time and the per-word hold-off after a detection."""

    def __init__(self) -> None:
        self.samples = 0
        self._quiet_until = 0.0

    @property
    def now_s(self) -> float:
        return self.samples / PIPELINE_RATE

    def allow(self) -> bool:
        return self.now_s >= self._quiet_until

    def fired(self) -> None:
        self._quiet_until = self.now_s + REFRACTORY_S


class MicroDetector:
    """microWakeWord: a small streaming model per word over shared 10 ms features."""

    def __init__(self, words: Sequence[str], sensitivity: dict[str, float]) -> None:
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

        self.words = tuple(words)
        self._features = MicroWakeWordFeatures()
        self._models = [MicroWakeWord.from_builtin(Model(w)) for w in self.words]
        self.thresholds = {w: threshold(m.probability_cutoff,
                                        sensitivity.get(w, DEFAULT_SENSITIVITY))
                           for w, m in zip(self.words, self._models, strict=True)}
        self._clock = _Refractory()

    def feed(self, pcm: bytes) -> list[Detection]:
        found: list[Detection] = []
        # Each feature is one 10 ms step; counting them keeps the stream time exact.
        for feature in self._features.process_streaming(pcm):
            self._clock.samples += PIPELINE_RATE // 100
            for word, model in zip(self.words, self._models, strict=True):
                prob = model.process_streaming_prob(feature) or 0.0
                if prob > self.thresholds[word] and self._clock.allow():
                    self._clock.fired()
                    found.append(Detection(word, PHRASES[word], round(prob, 3),
                                           self._clock.now_s))
        return found

    def close(self) -> None:
        for model in self._models:
            model.close()


class OpenDetector:
    """openWakeWord: shared mel-spectrogram and embedding models, a classifier per word."""

    def __init__(self, words: Sequence[str], sensitivity: dict[str, float]) -> None:
        from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

        self.words = tuple(words)
        self._features = OpenWakeWordFeatures.from_builtin()
        self._models = [OpenWakeWord.from_builtin(Model(w)) for w in self.words]
        self.thresholds = {w: threshold(OPEN_THRESHOLD, sensitivity.get(w, DEFAULT_SENSITIVITY))
                           for w in self.words}
        self._clock = _Refractory()

    def feed(self, pcm: bytes) -> list[Detection]:
        found: list[Detection] = []
        self._clock.samples += len(pcm) // 2
        for embedding in self._features.process_streaming(pcm):
            for word, model in zip(self.words, self._models, strict=True):
                for prob in model.process_streaming(embedding):
                    if prob > self.thresholds[word] and self._clock.allow():
                        self._clock.fired()
                        found.append(Detection(word, PHRASES[word], round(float(prob), 3),
                                               self._clock.now_s))
        return found

    def close(self) -> None:
        self._features.close()
        for model in self._models:
            model.close()


def describe(engine: str) -> dict[str, Any]:
    """The engine's package version and the words it ships (for /api/status and the bench)."""
    from importlib import metadata

    package = "pymicro-wakeword" if engine == MICRO else "pyopen-wakeword"
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        return {"engine": engine, "installed": False}
    return {"engine": engine, "package": package, "version": version,
            "words": sorted(shipped_words(engine))}


def shipped_words(engine: str) -> set[str]:
    """Names of the models inside the installed engine's wheel."""
    if engine == MICRO:
        import pymicro_wakeword

        folder = Path(pymicro_wakeword.__file__).parent / "models"
        return {json.loads(p.read_text())["model"].removesuffix(".tflite")
                for p in folder.glob("*.json")}
    import pyopen_wakeword

    folder = Path(pyopen_wakeword.__file__).parent / "models"
    return {p.stem for p in folder.glob("*.tflite")} - {"melspectrogram", "embedding_model"}


def strip_wake_phrase(text: str, phrase: str) -> str:
    """``text`` without a leading (part of the) wake phrase that the question was cut from,
    e.g. "Nabu, what time is it?" -> "what time is it?"."""
    words = [w.lower() for w in phrase.split()]
    tokens = text.split()
    i = 0
    while i < len(tokens) and i < len(words):
        token = tokens[i].strip(",.!?;:").lower()
        if token and (token in words or (i == 0 and len(token) >= 2
                                         and words[-1].endswith(token))):
            i += 1
            continue
        break
    rest = " ".join(tokens[i:])
    return rest if rest.strip(",.!?;: ") else text
