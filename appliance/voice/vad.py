"""Voice activity: the Silero VAD model faster-whisper ships, and endpointing on top of it.

:class:`SileroVad` scores 32 ms windows (512 samples at 16 kHz) with the
recurrent state carried across calls, so it can follow a live stream.
:class:`Endpointer` turns those scores into "speech started" and "speech
ended" with a configurable trailing silence and a bounded utterance length:
an utterance that reaches the bound ends there (``truncated``), and the
speech that runs on past it is dropped until the speaker pauses, so a
monologue or a television becomes one bounded turn, not a chain of them.
Both are blocking (onnxruntime) and meant to run in a worker thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from appliance.voice.audio import PIPELINE_RATE
from appliance.voice.errors import ModelLoadError

WINDOW = 512
"""Samples per Silero window at 16 kHz (32 ms)."""
CONTEXT = 64
"""Samples of the previous window the model sees in front of each window."""
WINDOW_S = WINDOW / PIPELINE_RATE
SPEECH_THRESHOLD = 0.5
SILENCE_THRESHOLD = 0.35
#: Consecutive speech windows before we believe speech started (64 ms).
START_WINDOWS = 2
#: Audio kept in front of the detected start, so the first phoneme is not clipped.
PRE_ROLL_S = 0.3
#: Silence after which a ``pause`` is reported, so transcription can start speculatively
#: while the endpointer still waits out the rest of the trailing silence.
PAUSE_S = 0.096
#: The shortest silence that may end an utterance early (the caller's ``end_now``, when the
#: pause's transcript is already a whole request): the transcription started at PAUSE_S
#: runs while this much silence accumulates, instead of after it.
EARLY_END_S = 0.16


def silero_model_path() -> Path:
    """The Silero VAD onnx file inside the installed faster-whisper."""
    from faster_whisper.utils import get_assets_path

    candidates = sorted(Path(get_assets_path()).glob("silero_vad*.onnx"))
    if not candidates:
        raise ModelLoadError(f"no silero_vad*.onnx in {get_assets_path()} "
                             "(is faster-whisper installed?)")
    return candidates[-1]


class SileroModel:
    """The loaded onnx model; one per process, shared by every :class:`SileroVad`."""

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        # One thread: a window takes well under a millisecond; more threads only contend.
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        try:
            self.session = onnxruntime.InferenceSession(
                str(path or silero_model_path()), providers=["CPUExecutionProvider"],
                sess_options=opts)
        except Exception as exc:
            raise ModelLoadError(f"cannot load the Silero VAD: {exc}") from exc
        self._lock = threading.Lock()

    def run(self, windows: np.ndarray, h: np.ndarray, c: np.ndarray,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            probs, h, c = self.session.run(None, {"input": windows, "h": h, "c": c})
        return np.asarray(probs).reshape(-1), h, c


class SileroVad:
    """Speech probability per 32 ms window of a 16 kHz stream; keeps state between calls."""

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities for each complete window now available (leftovers wait)."""
        data = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        n = len(data) // WINDOW
        self._pending = data[n * WINDOW:]
        if n == 0:
            return np.zeros(0, np.float32)
        windows = data[: n * WINDOW].reshape(n, WINDOW)
        prev = np.vstack([self._context[None, :], windows[:-1, -CONTEXT:]])
        batch = np.concatenate([prev, windows], axis=1)
        self._context = windows[-1, -CONTEXT:].copy()
        probs, self._h, self._c = self._model.run(batch, self._h, self._c)
        return probs


@dataclass(frozen=True)
class Segment:
    """Speech from ``start_s`` to ``end_s`` seconds into the stream."""

    start_s: float
    end_s: float


def find_speech(model: SileroModel, samples: np.ndarray, trailing_silence_s: float = 0.5,
                ) -> list[Segment]:
    """The speech segments of a whole 16 kHz recording (blocking)."""
    ep = Endpointer(SileroVad(model), trailing_silence_s=trailing_silence_s,
                    max_utterance_s=len(samples) / PIPELINE_RATE + 1)
    segments: list[Segment] = []
    for ev in ep.feed(samples):
        if ev.kind == "end":
            segments.append(Segment(ev.start_s, ev.end_s))
    last = ep.flush()
    if last is not None:
        segments.append(Segment(last.start_s, last.end_s))
    return segments


@dataclass
class VadEvent:
    """``start``: speech began at ``start_s``. ``end``: it ended at ``end_s``; ``audio`` holds
    the utterance (with a little pre-roll); ``truncated`` when it hit the length bound.
    ``pause``: a short silence that may become the end at ``end_s``; ``audio`` so far."""

    kind: str
    start_s: float
    end_s: float = 0.0
    detected_s: float = 0.0
    """Stream time at which the event was decided (after the trailing silence)."""
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    truncated: bool = False


class Endpointer:
    """Decides when the speaker started and stopped; collects each utterance's audio."""

    def __init__(self, vad: SileroVad, *, trailing_silence_s: float, max_utterance_s: float
                 ) -> None:
        self.vad = vad
        self.trailing_windows = max(1, round(trailing_silence_s / WINDOW_S))
        self.max_windows = max(1, int(max_utterance_s / WINDOW_S))
        self.pause_windows = max(1, round(PAUSE_S / WINDOW_S))
        self._pre_roll_windows = round(PRE_ROLL_S / WINDOW_S)
        self._window_index = 0
        self._recent: list[np.ndarray] = []  # the last windows, for the pre-roll
        self._speech: list[np.ndarray] = []
        self._in_speech = False
        self._overflow = False  # past a truncated utterance: ignore speech until a pause
        self._run = 0        # consecutive speech windows while not in speech
        self._silence = 0    # consecutive silent windows while in speech
        self._start_index = 0
        self._buffer = np.zeros(0, np.float32)

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def utterance_so_far(self) -> np.ndarray:
        """The audio of the utterance in progress (empty outside speech)."""
        if not self._in_speech or not self._speech:
            return np.zeros(0, np.float32)
        return np.concatenate(self._speech)

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        """Feed 16 kHz float32 audio of any length; the events it completed."""
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32, copy=False)])
        n = len(self._buffer) // WINDOW
        if n == 0:
            return []
        windows = self._buffer[: n * WINDOW].reshape(n, WINDOW)
        self._buffer = self._buffer[n * WINDOW:]
        probs = self.vad.process(windows.reshape(-1))
        events: list[VadEvent] = []
        for window, prob in zip(windows, probs, strict=True):
            ev = self._step(window, float(prob))
            if ev is not None:
                events.append(ev)
        return events

    def flush(self) -> VadEvent | None:
        """End of stream (or push-to-talk released): the utterance in progress, if any, as an
        ``end`` event; the next speech starts a new utterance even without a pause."""
        self._overflow = False
        if not self._in_speech:
            return None
        return self._finish(self._window_index, truncated=False)

    def silence_after(self, speech_end_s: float) -> float | None:
        """Seconds of silence so far after speech that ended at ``speech_end_s``; None when
        speech went on since or no utterance is in progress."""
        end_index = self._window_index - self._silence
        if not self._in_speech or self._silence == 0 \
                or abs(end_index * WINDOW_S - speech_end_s) > WINDOW_S / 2:
            return None
        return self._silence * WINDOW_S

    def end_now(self, speech_end_s: float) -> VadEvent | None:
        """End the utterance in progress now, while its trailing silence still runs, if that
        silence began at ``speech_end_s`` (the caller knows the request is complete then);
        None when speech went on since or no utterance is in progress."""
        if self.silence_after(speech_end_s) is None:
            return None
        return self._finish(self._window_index - self._silence, truncated=False,
                            detected=self._window_index)

    def _step(self, window: np.ndarray, prob: float) -> VadEvent | None:
        i = self._window_index
        self._window_index += 1
        if self._overflow:
            self._silence = self._silence + 1 if prob < SILENCE_THRESHOLD else 0
            if self._silence >= self.trailing_windows:
                self._overflow = False
                self._silence = 0
            return None
        if not self._in_speech:
            self._recent.append(window)
            if len(self._recent) > self._pre_roll_windows + START_WINDOWS:
                self._recent.pop(0)
            self._run = self._run + 1 if prob >= SPEECH_THRESHOLD else 0
            if self._run < START_WINDOWS:
                return None
            self._in_speech = True
            self._silence = 0
            self._start_index = i - START_WINDOWS + 1
            self._speech = list(self._recent)
            self._recent = []
            return VadEvent("start", self._start_index * WINDOW_S,
                            detected_s=(i + 1) * WINDOW_S)
        self._speech.append(window)
        self._silence = self._silence + 1 if prob < SILENCE_THRESHOLD else 0
        if self._silence >= self.trailing_windows:
            return self._finish(i + 1 - self._silence, truncated=False, detected=i + 1)
        if self._silence == self.pause_windows:
            return VadEvent("pause", self._start_index * WINDOW_S,
                            end_s=(i + 1 - self._silence) * WINDOW_S, detected_s=(i + 1) * WINDOW_S,
                            audio=np.concatenate(self._speech))
        if i + 1 - self._start_index >= self.max_windows:
            return self._finish(i + 1, truncated=True)
        return None

    def _finish(self, end_index: int, *, truncated: bool, detected: int | None = None,
                ) -> VadEvent:
        audio = np.concatenate(self._speech) if self._speech else np.zeros(0, np.float32)
        ev = VadEvent("end", self._start_index * WINDOW_S, end_s=end_index * WINDOW_S,
                      detected_s=(detected if detected is not None else end_index) * WINDOW_S,
                      audio=audio, truncated=truncated)
        self._in_speech = False
        self._overflow = truncated
        self._speech = []
        self._run = 0
        self._silence = 0
        return ev
