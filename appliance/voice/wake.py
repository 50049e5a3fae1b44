"""Wake words: the models shipped inside pymicro-wakeword and pyopen-wakeword, on a live stream.

A :class:`WakeDetector` is fed 16 kHz 16-bit mono PCM in chunks of any size
and returns a :class:`Detection` when one of its words was said. Each stream
needs its own detector (the models are stateful); building one takes a few
milliseconds and about a megabyte. Detection is blocking (TensorFlow Lite
through ctypes) and meant to run in a worker thread.

Three detectors, chosen by ``voice.wake_engine`` and measured in bench/wake.py
(docs/performance.md): microWakeWord (under 1 % of one core for four words,
decides about 0.15 s after the phrase), openWakeWord (about 8 %, 0.44 s; more
robust in noise for some words, and it knows hey_rhasspy), and the default,
``cascade``: microWakeWord listens, and a phrase it almost accepted is played to
openWakeWord, which runs only then (two engines' ears for about the cost of the
small one).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from appliance.voice.audio import PIPELINE_RATE
from appliance.voice.errors import ModelLoadError

log = logging.getLogger(__name__)

MICRO = "microwakeword"
OPEN = "openwakeword"
CASCADE = "cascade"
#: After a detection, the detector ignores this much audio: one phrase wakes once.
REFRACTORY_S = 1.0
#: cascade: a microWakeWord probability above this (and below the word's threshold) makes
#: a candidate that openWakeWord checks.
CANDIDATE_PROB = 0.1
#: cascade: the audio openWakeWord hears of a candidate, ending where it is checked. Its
#: classifier needs about 2 s of audio for its first verdict.
VERIFY_WINDOW_S = 3.0
#: cascade: a candidate is checked at the latest this long after it began.
CANDIDATE_MAX_S = 1.0
#: cascade: a word is checked at most once in this much audio (a candidate waits).
CHECK_SPACING_S = 1.0
#: cascade: audio is taken 100 ms at a time.
PIECE_BYTES = PIPELINE_RATE // 10 * 2
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
    requested, engine = engine, _engine_here(engine)
    if requested != engine:
        _warn_fallback()
    if not words:
        raise ModelLoadError("no wake words to listen for (voice.wake_words is empty)")
    try:
        if engine == MICRO:
            return MicroDetector(words, sensitivity)
        if engine == OPEN:
            return OpenDetector(words, sensitivity)
        if engine == CASCADE:
            return CascadeDetector(words, sensitivity)
    except ImportError as exc:
        package = {MICRO: "pymicro-wakeword", OPEN: "pyopen-wakeword"}.get(
            engine, "pymicro-wakeword pyopen-wakeword")
        raise ModelLoadError(f"wake word engine {engine} is not installed ({exc}); "
                             f"pip install {package}") from exc
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load the {engine} wake word models "
                             f"{', '.join(words)}: {exc}") from exc
    raise ModelLoadError(f"unknown wake word engine {engine!r}; "
                         f"expected {CASCADE}, {MICRO} or {OPEN}")


def cascade_possible() -> bool:
    """Whether the cascade's second engine is installed (not on every CPU: see docs)."""
    return importlib.util.find_spec("pyopen_wakeword") is not None


def _engine_here(engine: str) -> str:
    """The engine that runs for ``engine`` on this box: the cascade without openWakeWord
    (no wheel for 32-bit ARM) is microWakeWord alone."""
    return MICRO if engine == CASCADE and not cascade_possible() else engine


@functools.cache
def _warn_fallback() -> None:
    """Said once per process."""
    log.warning("wake: openWakeWord (pyopen-wakeword) is not installed here (it has no wheel "
                "for 32-bit ARM): the cascade listens with microWakeWord alone; set "
                "voice.wake_engine: microwakeword to say so")


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
        self.clock = _Refractory()
        self._pending = [0] * len(self._models)  # features each model holds, not yet run on

    def feed(self, pcm: bytes) -> list[Detection]:
        found: list[Detection] = []
        for word, prob in self.steps(pcm):
            if prob > self.thresholds[word] and self.clock.allow():
                self.clock.fired()
                found.append(Detection(word, PHRASES[word], round(prob, 3), self.clock.now_s))
        return found

    def steps(self, pcm: bytes) -> Iterator[tuple[str, float]]:
        """Each word's probability each time its model runs on ``pcm``: a model runs once
        every ``stride`` 10 ms features (3 for the shipped ones) and answers 0.0 in between,
        which is not a probability and is not yielded. The stream clock moves with every
        feature (counting them keeps the stream time exact)."""
        for feature in self._features.process_streaming(pcm):
            self.clock.samples += PIPELINE_RATE // 100
            for i, (word, model) in enumerate(zip(self.words, self._models, strict=True)):
                prob = model.process_streaming_prob(feature) or 0.0
                # The model collects ``stride`` features, then runs on them (pymicro-wakeword).
                self._pending[i] += 1
                if self._pending[i] >= model.stride:
                    self._pending[i] = 0
                    yield word, prob

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
        self.clock = _Refractory()

    def feed(self, pcm: bytes) -> list[Detection]:
        found: list[Detection] = []
        if len(pcm) < 2:
            return found  # pyopen-wakeword cannot take an empty chunk
        self.clock.samples += len(pcm) // 2
        for embedding in self._features.process_streaming(pcm):
            for word, model in zip(self.words, self._models, strict=True):
                for prob in model.process_streaming(embedding):
                    if prob > self.thresholds[word] and self.clock.allow():
                        self.clock.fired()
                        found.append(Detection(word, PHRASES[word], round(float(prob), 3),
                                               self.clock.now_s))
        return found

    def close(self) -> None:
        self._features.close()
        for model in self._models:
            model.close()


class CascadeDetector:
    """microWakeWord listens; when a word's probability rises past CANDIDATE_PROB without
    reaching its threshold, the last VERIFY_WINDOW_S of audio is played to openWakeWord
    once the probability has fallen again (or CANDIDATE_MAX_S later), and openWakeWord's
    verdict decides. openWakeWord's models run only on those candidates, so the cost stays
    near microWakeWord's while a phrase either engine hears wakes the box (bench/wake.py:
    the two engines miss different voices and noises)."""

    def __init__(self, words: Sequence[str], sensitivity: dict[str, float]) -> None:
        self.words = tuple(words)
        self._micro = MicroDetector(words, sensitivity)
        self._verifier = _Verifier(words, sensitivity)
        self.thresholds = self._micro.thresholds
        self.verify_thresholds = self._verifier.thresholds
        self._ring = np.zeros(int(VERIFY_WINDOW_S * PIPELINE_RATE), np.int16)
        self._candidates: dict[str, float] = {}  # word -> stream time its candidate began
        self._judged: set[str] = set()  # checked, and its probability has not fallen since
        self._checked_at: dict[str, float] = {}  # word -> stream time of its last check
        self._fed = 0  # samples in the ring so far
        self._woke_at = -len(self._ring)  # self._fed when a word last woke the detector
        #: How many candidates openWakeWord checked, and accepted (for the bench).
        self.checked = 0
        self.accepted = 0

    def feed(self, pcm: bytes) -> list[Detection]:
        found: list[Detection] = []
        # A piece at a time, so the ring holds what was heard up to about the step checked.
        for i in range(0, len(pcm) - 1, PIECE_BYTES):
            piece = pcm[i:i + PIECE_BYTES]
            piece = piece[: len(piece) // 2 * 2]
            samples = np.frombuffer(piece, np.int16)
            self._ring[:-len(samples)] = self._ring[len(samples):]
            self._ring[-len(samples):] = samples
            self._fed += len(samples)
            found += self._steps(piece)
        return found

    def _steps(self, pcm: bytes) -> list[Detection]:
        clock = self._micro.clock
        found: list[Detection] = []
        for word, prob in self._micro.steps(pcm):
            now = clock.now_s
            began = self._candidates.get(word)
            if prob <= CANDIDATE_PROB:
                self._judged.discard(word)
            if not clock.allow():
                self._candidates.pop(word, None)
            elif prob > self.thresholds[word]:
                self._candidates.pop(word, None)
                self._woke(clock)
                found.append(Detection(word, PHRASES[word], round(prob, 3), now))
            elif began is None:
                if prob > CANDIDATE_PROB and word not in self._judged:
                    self._candidates[word] = now
            elif ((prob <= CANDIDATE_PROB or now - began >= CANDIDATE_MAX_S)
                  and now - self._checked_at.get(word, -CHECK_SPACING_S) >= CHECK_SPACING_S):
                del self._candidates[word]
                self._checked_at[word] = now
                self._judged.add(word)
                self.checked += 1
                score = self._verifier.score(word, self._unheard())
                if score > self.verify_thresholds[word]:
                    self.accepted += 1
                    self._woke(clock)
                    found.append(Detection(word, PHRASES[word], round(score, 3), now))
        return found

    def _woke(self, clock: _Refractory) -> None:
        clock.fired()
        self._woke_at = self._fed

    def _unheard(self) -> np.ndarray:
        """The ring, with the audio up to the last wake silenced: a phrase that already woke
        the box must not be what a later candidate is judged by."""
        since = self._fed - self._woke_at
        if since >= len(self._ring):
            return self._ring
        window = self._ring.copy()
        window[: len(window) - since] = 0
        return window

    def close(self) -> None:
        self._micro.close()
        self._verifier.close()


class _Verifier:
    """openWakeWord run over a stretch of audio on demand: the features' and the word
    models' streaming state is cleared first, so only that audio is judged."""

    def __init__(self, words: Sequence[str], sensitivity: dict[str, float]) -> None:
        from pyopen_wakeword import Model, OpenWakeWord, OpenWakeWordFeatures

        self._features = OpenWakeWordFeatures.from_builtin()
        self._models = {w: OpenWakeWord.from_builtin(Model(w)) for w in words}
        self.thresholds = {w: threshold(OPEN_THRESHOLD, sensitivity.get(w, DEFAULT_SENSITIVITY))
                           for w in words}
        # The streaming state pyopen-wakeword 1.x keeps; checked here, not at the first phrase.
        for name in ("audio", "new_audio_samples", "mels", "new_mels"):
            if not hasattr(self._features, name):
                raise RuntimeError(f"pyopen-wakeword has no {name} (a version this code "
                                   "does not know)")

    def score(self, word: str, samples: np.ndarray) -> float:
        """openWakeWord's highest probability for ``word`` over ``samples`` (16 kHz)."""
        features, model = self._features, self._models[word]
        features.audio[:] = 0.0
        features.new_audio_samples = 0
        features.mels[:] = 0.0
        features.new_mels = 0
        model.reset()
        best = 0.0
        for embedding in features.process_streaming(samples.tobytes()):
            for prob in model.process_streaming(embedding):
                best = max(best, float(prob))
        return best

    def close(self) -> None:
        self._features.close()
        for model in self._models.values():
            model.close()


def describe(engine: str) -> dict[str, Any]:
    """The engine's package version and the words it ships (for /api/status and the bench)."""
    from importlib import metadata

    packages = {MICRO: ("pymicro-wakeword",), OPEN: ("pyopen-wakeword",)}.get(
        _engine_here(engine), ("pymicro-wakeword", "pyopen-wakeword"))
    try:
        versions = [metadata.version(p) for p in packages]
    except metadata.PackageNotFoundError:
        return {"engine": engine, "installed": False}
    return {"engine": engine, "package": " + ".join(packages),
            "version": " + ".join(versions), "words": sorted(shipped_words(engine))}


def shipped_words(engine: str) -> set[str]:
    """Names of the models inside the installed engine's wheel (for ``cascade``, the words
    both engines ship)."""
    engine = _engine_here(engine)
    if engine == CASCADE:
        return shipped_words(MICRO) & shipped_words(OPEN)
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
