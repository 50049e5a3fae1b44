"""Text to speech with piper, one sentence at a time. Blocking: call from a worker thread.

A piper voice is cut in two when it loads (:mod:`appliance.voice.onnx_split`): the
part that reads the text and makes the latent frames of a sentence, and the decoder
that turns frames into samples. The decoder's output for a frame depends only on
the frames near it, so it can run on the first frames of a sentence alone:
:meth:`Synthesizer.stream` hands out the first ~0.37 s of a long first sentence
once that much is decoded, and the rest when it is, the same samples as a whole
run to within float rounding (how many neighbouring frames that takes is measured
when the voice loads). Before this, the first sentence was cut in its text after a
few words, which cost a second run and broke its intonation.

Levels: piper scales each sentence to its own peak, which needs the whole sentence
before the first sample can go out. A cut voice is scaled by one gain instead, set
when it loads from a calibration sentence, with a soft knee so a louder sentence
is never clipped. A voice that does not cut (an export without ``/dec/`` node
names) runs whole, as piper runs it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance import hardware
from appliance.voice import onnx_split
from appliance.voice.errors import ModelLoadError

log = logging.getLogger(__name__)

#: piper's exports name the decoder's nodes ``/dec/...`` (the module's name in VITS).
DECODER_PREFIX = "/dec/"
#: A streamed sentence's first decoder run covers this many latent frames (piper's
#: voices: 256 samples a frame, so ~0.37 s at 22.05 kHz).
FIRST_FRAMES = 32
#: A first sentence shorter than this (~1.5 s) is decoded whole: its whole run takes
#: about what the cut's first piece and second run would (measured on 2 cores: the
#: text part of a short sentence is ~20 ms either way, the decoder ~0.35 ms a frame).
MIN_CUT_FRAMES = 4 * FIRST_FRAMES
#: Frames of context tried on each side of a cut, smallest first, when the voice loads.
CONTEXT_CHOICES = (12, 16, 24, 32)
#: How close cut decoding must come to a whole run (of piper's raw output, -1..1).
CUT_TOLERANCE = 1e-4
#: ~1.2 s, cut after its first CALIBRATION_CUT frames: enough to tell the contexts up to
#: 32 frames apart, cheap on an emulated or small board (it is also the warm-up).
CALIBRATION_TEXT = "The kitchen lights are on."
CALIBRATION_CUT = 16
#: The calibration sentence's peak is scaled to this; above KNEE the level bends softly
#: toward full scale (measured on en_US-joe-medium: sixteen everyday answers, three draws
#: each, peak at 0.90-1.54 times the calibration's, median 1.14, so a typical answer
#: peaks near 0.7 and none is clipped).
LEVEL = 0.6
KNEE = 0.75


@dataclass
class _Parts:
    front: Any  # onnxruntime sessions
    back: Any
    boundary: list[str]
    front_inputs: set[str]
    context: int | None = None  # frames each side; None: the decoder runs whole
    gain: float = 1.0


class Synthesizer:
    """A loaded piper voice; ``synthesize`` yields int16 mono chunks at ``sample_rate``."""

    def __init__(self, voice_path: Path, threads: int = 0) -> None:
        """``threads``: onnxruntime's threads for the voice; 0 means the physical cores this
        process may use (what onnxruntime would pick, but see ``_load``)."""
        config_path = Path(f"{voice_path}.json")
        if not voice_path.is_file() or not config_path.is_file():
            raise ModelLoadError(f"piper voice {voice_path} or its {config_path.name} is missing "
                                 "(run `hybrid-agent models fetch` or set voice.tts_voice)")
        threads = threads or hardware.usable_physical_cores()
        try:
            self._voice, self._parts = _load(voice_path, config_path, threads)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot load the piper voice {voice_path}: {exc}") from exc
        except Exception as exc:  # onnxruntime raises its own types
            raise ModelLoadError(f"cannot load the piper voice {voice_path}: {exc}") from exc
        self.voice_path = voice_path
        self.sample_rate = int(self._voice.config.sample_rate)
        self._length_scale = float(self._voice.config.length_scale or 1.0)
        self._lock = threading.Lock()
        self._config_path, self._threads = config_path, threads
        self._prepare_lock = threading.Lock()
        self._prepared = self._parts is None

    def prepare(self) -> None:
        """Measure the cut voice's gain and context (a short sentence, twice: ~40 ms here,
        a minute on an emulated board); the first synthesis does it if nothing did before.
        A cut voice that will not run is loaded whole instead."""
        with self._prepare_lock:
            if self._prepared or self._parts is None:
                return
            try:
                self._calibrate(self._parts)
            except ModelLoadError:
                raise
            except Exception as exc:  # the cut model would not run: run it whole
                log.warning("the piper voice %s runs whole: its cut failed: %s",
                            self.voice_path.name, exc)
                self._voice, self._parts = _load(self.voice_path, self._config_path,
                                                 self._threads, cut=False)
            self._prepared = True

    @property
    def streams(self) -> bool:
        """Whether :meth:`stream` hands out a long first sentence in more than one piece."""
        self.prepare()
        return self._parts is not None and self._parts.context is not None

    def synthesize(self, text: str, speed: float = 1.0, *, steady: bool = False,
                   ) -> Iterator[np.ndarray]:
        """One int16 array per sentence piper finds in ``text``; ``speed`` 2.0 talks twice
        as fast. piper draws its timing and timbre anew on each call; ``steady`` turns that
        variation off, so the same text is the same audio every time (for tests and
        benchmarks that must hear the same speech on each run)."""
        self.prepare()
        if self._parts is None:
            yield from self._piper(text, speed, steady)
            return
        for ids in self._sentences(text):
            yield self._pcm(np.concatenate(list(self._decode(ids, speed, steady, cut=False))))

    def stream(self, text: str, speed: float = 1.0, *, steady: bool = False,
               ) -> Iterator[np.ndarray]:
        """As :meth:`synthesize`, but a long first sentence (:data:`MIN_CUT_FRAMES`)
        comes in two arrays: its first :data:`FIRST_FRAMES` frames as soon as they are
        decoded, then the rest."""
        self.prepare()
        if self._parts is None:
            yield from self._piper(text, speed, steady)
            return
        for i, ids in enumerate(self._sentences(text)):
            for audio in self._decode(ids, speed, steady, cut=i == 0):
                yield self._pcm(audio)

    def synthesize_all(self, text: str, speed: float = 1.0, *, steady: bool = False,
                       ) -> np.ndarray:
        parts = list(self.synthesize(text, speed, steady=steady))
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    # ------------------------------------------------------------------ internals

    def _piper(self, text: str, speed: float, steady: bool) -> Iterator[np.ndarray]:
        config = None
        if speed != 1.0 or steady:
            from piper import SynthesisConfig

            config = SynthesisConfig(length_scale=self._length_scale / speed)
            if steady:
                config.noise_scale = config.noise_w_scale = 0.0
        with self._lock:
            chunks = list(self._voice.synthesize(text, config))
        for chunk in chunks:
            yield chunk.audio_int16_array

    def _sentences(self, text: str) -> Iterator[list[int]]:
        for phonemes in self._voice.phonemize(text):
            if phonemes:
                yield self._voice.phonemes_to_ids(phonemes)

    def _decode(self, ids: list[int], speed: float, steady: bool, *, cut: bool,
                ) -> Iterator[np.ndarray]:
        """piper's raw float output for one sentence: whole, or (``cut``) its first
        :data:`FIRST_FRAMES` frames and then the rest."""
        assert self._parts is not None
        made, frames, timed = self._front(ids, speed, steady)
        ctx = self._parts.context
        spans = [(0, frames)]
        if cut and ctx is not None and frames >= max(MIN_CUT_FRAMES, FIRST_FRAMES + 2 * ctx):
            spans = [(0, FIRST_FRAMES), (FIRST_FRAMES, frames)]
        yield from self._back(made, frames, timed, spans, ctx or 0)

    def _front(self, ids: list[int], speed: float, steady: bool,
               ) -> tuple[dict[str, np.ndarray], int, set[str]]:
        """The latent frames of a sentence (and what else the decoder reads), their count,
        and which of the tensors run along them."""
        parts = self._parts
        assert parts is not None
        config = self._voice.config
        noise, noise_w = (0.0, 0.0) if steady else (config.noise_scale, config.noise_w_scale)
        feeds: dict[str, np.ndarray] = {
            "input": np.array([ids], dtype=np.int64),
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": np.array([noise, self._length_scale / speed, noise_w], dtype=np.float32),
        }
        if config.num_speakers > 1:
            feeds["sid"] = np.array([config.default_speaker_id], dtype=np.int64)
        feeds = {k: v for k, v in feeds.items() if k in parts.front_inputs}
        with self._lock:
            made = dict(zip(parts.boundary, parts.front.run(parts.boundary, feeds), strict=True))
        frames = max(v.shape[-1] for v in made.values())
        timed = {k for k, v in made.items() if v.ndim == 3 and v.shape[-1] == frames > 1}
        return made, frames, timed

    def _back(self, made: dict[str, np.ndarray], frames: int, timed: set[str],
              spans: list[tuple[int, int]], ctx: int) -> Iterator[np.ndarray]:
        """The decoder's samples for each span of frames, each decoded with ``ctx``
        frames of context on either side."""
        assert self._parts is not None
        for start, stop in spans:
            lo, hi = max(0, start - ctx), min(frames, stop + ctx)
            window = {k: (v[..., lo:hi] if k in timed else v) for k, v in made.items()}
            with self._lock:
                out = self._parts.back.run(None, window)[0].reshape(-1)
            hop = len(out) // (hi - lo)
            yield out[(start - lo) * hop:(stop - lo) * hop]

    def _pcm(self, audio: np.ndarray) -> np.ndarray:
        assert self._parts is not None
        y = audio * self._parts.gain
        loud = np.abs(y) > KNEE
        if loud.any():
            over = np.abs(y[loud]) - KNEE
            y[loud] = np.sign(y[loud]) * (KNEE + (1 - KNEE) * np.tanh(over / (1 - KNEE)))
        return (y * 32767).astype(np.int16)

    def _calibrate(self, parts: _Parts) -> None:
        """The gain, and the context a cut needs to match a whole run; also the warm-up."""
        ids = next(self._sentences(CALIBRATION_TEXT))
        made, frames, timed = self._front(ids, 1.0, True)
        whole = np.concatenate(list(self._back(made, frames, timed, [(0, frames)], 0)))
        peak = float(np.abs(whole).max())
        if not np.isfinite(peak) or peak < 1e-4:
            raise ModelLoadError(f"the piper voice {self.voice_path} speaks silence")
        parts.gain = LEVEL / peak
        for ctx in CONTEXT_CHOICES:
            if frames < CALIBRATION_CUT + 2 * ctx:
                break  # the calibration sentence is too short to tell
            spans = [(0, CALIBRATION_CUT), (CALIBRATION_CUT, frames)]
            joined = np.concatenate(list(self._back(made, frames, timed, spans, ctx)))
            if len(joined) == len(whole) and float(np.abs(joined - whole).max()) <= CUT_TOLERANCE:
                parts.context = ctx
                return
        log.info("the piper voice %s decodes whole sentences: no cut of its decoder "
                 "matched a whole run", self.voice_path.name)


def _load(voice_path: Path, config_path: Path, threads: int, *, cut: bool = True,
          ) -> tuple[Any, _Parts | None]:
    """piper's voice, cut at its decoder where it can be, with onnxruntime's threads
    counted and told not to spin.

    Left to count them itself (``intra_op_num_threads`` 0), onnxruntime pins each of
    its threads, and the calling one, to a core of its choosing (``sched_setaffinity``).
    The shipped unit forbids that syscall (``SystemCallFilter=~@resources``), so the
    same daemon ran pinned without the sandbox and unpinned under the unit: on the
    emulated arm64 box, with other work on the same cores, piper was 1.4x slower
    pinned. Counted, the threads are never pinned, and the scheduler may move them off
    a core the LLM holds (issue 21).

    Spinning waits for a core that another process (the LLM, a test suite) holds, and
    under emulation costs more than the work: a 1.2 s sentence took 1050 s in an
    emulated arm64 box. Measured on this box's x86 quiet, not spinning is as fast
    (real-time factor 0.084 vs 0.090). Otherwise as ``PiperVoice.load``.
    """
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.voice import ESPEAK_DATA_DIR

    with open(config_path, encoding="utf-8") as fh:
        config = PiperConfig.from_dict(json.load(fh))
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")

    def session(model: str | bytes) -> Any:
        return onnxruntime.InferenceSession(model, sess_options=opts,
                                           providers=["CPUExecutionProvider"])

    parts = None
    halves = None
    if cut:
        try:
            halves = onnx_split.split(voice_path.read_bytes(), DECODER_PREFIX)
        except onnx_split.SplitError as exc:
            log.warning("the piper voice %s runs whole: %s", voice_path.name, exc)
    if halves is not None:
        front = session(halves.front)
        parts = _Parts(front=front, back=session(halves.back), boundary=halves.boundary,
                       front_inputs={i.name for i in front.get_inputs()})
    # piper's own object phonemizes; it runs the model only when the voice did not cut.
    whole = session(str(voice_path)) if parts is None else parts.front
    voice = PiperVoice(config=config, session=whole, espeak_data_dir=Path(ESPEAK_DATA_DIR),
                       download_dir=Path.cwd())
    return voice, parts
