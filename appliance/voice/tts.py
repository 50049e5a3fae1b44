"""Text to speech with piper, one sentence at a time. Blocking: call from a worker thread.

A piper voice is cut in two when it loads (:mod:`appliance.voice.onnx_split`): the
part that reads the text and makes the latent frames of a sentence, and the decoder
that turns frames into samples. The decoder's output for a frame depends only on
the frames near it (HiFi-GAN's receptive field, :data:`CONTEXT`), so it can run on
the first frames of a sentence alone: :meth:`Synthesizer.stream` hands out the
first ~0.37 s of a first sentence once that much is decoded, and the rest when
it is (in more pieces on a slow box, below), the same samples as a whole run to
within float rounding. Before this, the first sentence was cut in its text after
a few words, which cost a second run and broke its intonation.

Pace: on a slow board the rest of a long sentence took longer to decode than its
first 0.37 s take to play, and the listener heard "Tomorrow will" and then
silence (1.1 s of it with a fifth of one core here). So a stream keeps the
listener's clock (:class:`_Pace`) and the voice its decoder's speed (seconds a
frame, from its own runs), and each next piece is planned (:func:`plan`) to be
decoded while the audio already handed out plays: the rest at once where it fits
(on a fast box, everyday sentences come in the same two pieces as before), else
the largest piece that fits, larger as the audio ahead grows. Where no pieces
would keep ahead (a board slower than about 2.5 times real time, or an emulated
one) the sentence is decoded whole: a late start rather than a pause in the
middle. Not planned for: the text part of the next sentence, and a second stream
waiting for the same voice.

Levels: piper scales each sentence to its own peak, which needs the whole sentence
before the first sample can go out. A cut voice is scaled by one gain instead,
learnt from the raw peaks of the first sentences it speaks (:data:`LEVEL_SENTENCES`),
with a soft knee so a louder sentence is never clipped. Nothing is measured when
the voice loads: on an emulated arm64 board a sentence takes minutes, and a
measurement there held the daemon's first answer past any sane timeout. Until the
first sentence has been spoken the voice does not cut (it has no gain yet) and
scales that sentence to :data:`LEVEL` itself. A voice that does not cut (an export
without ``/dec/`` node names, or one whose cut fails to run) runs whole, as piper
runs it.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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
#: A first sentence shorter than this (~0.74 s, "Okay.") is decoded whole: its first
#: piece would be most of it. "The kitchen lights are on." (110 frames) is cut: first
#: audio 54 against 87 ms whole here, for 13 ms more in all (bench/wyoming.py; a cut
#: decodes 2 x CONTEXT frames more and runs the decoder twice).
MIN_CUT_FRAMES = 2 * FIRST_FRAMES
#: Latent frames of context decoded on each side of a cut. piper's medium decoder (a
#: 7-wide input convolution, then upsampling 8, 8 and 4, each followed by residual
#: blocks of kernels 3, 5 and 7 with dilations 1+2, 2+6 and 3+12) sees about 11
#: frames to each side (3 + 1 + 45/8 + 45/64 + ...); for
#: en_US-joe-medium a cut with 12 differs from a whole run by 5.5e-7, with 8 by 1.5e-4
#: (tests/voice/test_tts_stream.py checks both). 16 leaves a margin for other exports;
#: it costs 8 frames more decoding a cut sentence than 12 (~3 ms at 2 threads here).
CONTEXT = 16
#: A next piece is planned to be decoded within this share of the audio still ahead of
#: the listener (the rest: the way to the speaker, and a box whose load changes).
MARGIN = 0.7
#: A sentence of median loudness for the voice peaks at this fraction of full scale;
#: above KNEE the level bends softly toward full scale (measured on en_US-joe-medium:
#: sixteen everyday answers, three draws each, peaked at 0.79-1.35 times their median,
#: so none is clipped).
LEVEL = 0.7
KNEE = 0.75
#: The gain is the median of this many first sentences' raw peaks, then fixed (so the
#: same text, ``steady``, is the same audio from then on).
LEVEL_SENTENCES = 5


@dataclass
class _Parts:
    front: Any  # onnxruntime sessions
    back: Any
    boundary: list[str]
    front_inputs: set[str]
    peaks: list[float] = field(default_factory=list)  # raw peaks of the first sentences
    per_frame: float | None = None  # seconds the decoder takes a frame (context counted)
    frame_s: float = 0.0  # seconds of audio a frame makes (known after the first run)

    @property
    def gain(self) -> float | None:
        return LEVEL / statistics.median(self.peaks) if self.peaks else None

    @property
    def learning(self) -> bool:
        return len(self.peaks) < LEVEL_SENTENCES

    def heard(self, peak: float) -> None:
        if self.learning and np.isfinite(peak) and peak > 1e-4:
            self.peaks.append(peak)

    def decoded(self, frames: int, seconds: float) -> None:
        """A decoder run's speed, averaged with the runs before (a box's load changes)."""
        here = seconds / max(frames, 1)
        self.per_frame = here if self.per_frame is None else (self.per_frame + here) / 2


def plan(pos: int, frames: int, ahead: float | None, per_frame: float | None,
         frame_s: float) -> int:
    """Where the next piece of a sentence ends: frames ``pos`` up to the returned one are
    decoded next. ``ahead``: seconds of audio handed out and not yet heard (None before
    the first piece of a stream); ``per_frame``: the decoder's seconds a frame (None
    before its first run); ``frame_s``: seconds of audio a frame.

    While audio plays: the rest at once if it can be decoded within :data:`MARGIN` of
    the audio ahead, else the largest piece that can (:func:`_fitting`). Where none can
    (nothing plays yet, or this box has fallen behind), the listener waits for this
    piece, so it is the least after which the rest keeps ahead: :data:`FIRST_FRAMES` on a
    fast box, more on a slow one, the sentence whole where nothing would keep ahead (a
    late start rather than a pause in the middle), and a sentence shorter than
    :data:`MIN_CUT_FRAMES` whole."""
    if per_frame is not None and ahead:
        stop = _fitting(pos, frames, ahead, per_frame)
        if stop is not None:
            return stop
    rest = frames - pos
    if rest < MIN_CUT_FRAMES:
        return frames
    if per_frame is None:  # no run timed yet: the first piece, as on a fast box
        return pos + FIRST_FRAMES if ahead is None else frames
    for first in range(FIRST_FRAMES, rest - FIRST_FRAMES + 1, FIRST_FRAMES // 2):
        then = max(0.0, (ahead or 0.0) - per_frame * (first + 2 * CONTEXT)) + first * frame_s
        if _keeps_ahead(pos + first, frames, then, per_frame, frame_s):
            return pos + first
    return frames


def _fitting(pos: int, frames: int, ahead: float, per_frame: float) -> int | None:
    """The rest, or else the largest piece worth a run (at least :data:`FIRST_FRAMES`, and
    leaving at least as much), that is decoded within :data:`MARGIN` of ``ahead``."""
    rest = frames - pos
    if per_frame * (rest + CONTEXT) <= MARGIN * ahead:
        return frames
    piece = min(int(MARGIN * ahead / per_frame) - 2 * CONTEXT, rest - FIRST_FRAMES)
    return pos + piece if piece >= FIRST_FRAMES else None


def _keeps_ahead(pos: int, frames: int, ahead: float, per_frame: float, frame_s: float,
                 ) -> bool:
    """Whether from ``pos`` on every piece fits (:func:`_fitting`) in the audio ahead."""
    while pos < frames:
        stop = _fitting(pos, frames, ahead, per_frame)
        if stop is None:
            return False
        ahead += (stop - pos) * frame_s - per_frame * (stop - pos + 2 * CONTEXT)
        pos = stop
    return True


@dataclass
class _Pace:
    """One stream's listener: the audio handed out so far ends at ``ends``
    (``time.monotonic``), if it has started playing at the first piece and without a
    pause since."""
    ends: float | None = None

    def ahead(self) -> float | None:
        return None if self.ends is None else max(0.0, self.ends - time.monotonic())

    def handed(self, seconds: float) -> None:
        now = time.monotonic()
        self.ends = max(self.ends or now, now) + seconds


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

    @property
    def cut(self) -> bool:
        """Whether the voice runs cut at its decoder (else piper runs it whole)."""
        return self._parts is not None

    @property
    def streams(self) -> bool:
        """Whether :meth:`stream` now hands out a long first sentence in more than one
        piece (a cut voice, once it has spoken a sentence and so has its gain)."""
        return self._parts is not None and self._parts.gain is not None

    def synthesize(self, text: str, speed: float = 1.0, *, steady: bool = False,
                   ) -> Iterator[np.ndarray]:
        """One int16 array per sentence piper finds in ``text``; ``speed`` 2.0 talks twice
        as fast. piper draws its timing and timbre anew on each call; ``steady`` turns that
        variation off, so the same text is the same audio every time (for tests and
        benchmarks that must hear the same speech on each run)."""
        if self._parts is None:
            yield from self._piper(text, speed, steady)
            return
        for ids in self._sentences(text):
            yield np.concatenate(list(self._sentence(ids, speed, steady, pace=None)))

    def stream(self, text: str, speed: float = 1.0, *, steady: bool = False,
               ) -> Iterator[np.ndarray]:
        """As :meth:`synthesize`, but in pieces once the voice has its gain
        (:attr:`streams`): a first sentence of :data:`MIN_CUT_FRAMES` or more as its first
        :data:`FIRST_FRAMES` frames as soon as they are decoded (more on a slow box), then
        the rest; and any sentence in more pieces where this box would not otherwise
        decode it before the audio handed out before it has played (:func:`plan`). Each
        piece is meant to be played as soon as it comes."""
        if self._parts is None:
            yield from self._piper(text, speed, steady)
            return
        pace = _Pace()
        for ids in self._sentences(text):
            yield from self._sentence(ids, speed, steady, pace=pace)

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
        with self._lock:  # one onnxruntime session; piper yields per sentence
            chunks = list(self._voice.synthesize(text, syn_config=config))
        for chunk in chunks:
            yield chunk.audio_int16_array

    def _sentences(self, text: str) -> Iterator[list[int]]:
        for phonemes in self._voice.phonemize(text):
            if phonemes:
                yield self._voice.phonemes_to_ids(phonemes)

    def _sentence(self, ids: list[int], speed: float, steady: bool, *, pace: _Pace | None,
                  ) -> Iterator[np.ndarray]:
        """One sentence as int16: whole, or (``pace`` given and the gain known) in the
        pieces :func:`plan` gives for the listener ``pace`` keeps."""
        parts = self._parts
        assert parts is not None
        made, frames, timed = self._front(ids, speed, steady)
        gain = parts.gain
        learning = parts.learning  # peaks are read only while the level is learnt
        peak = 0.0
        pos = 0
        while pos < frames:
            stop = frames
            if pace is not None and gain is not None:
                stop = plan(pos, frames, pace.ahead(), parts.per_frame, parts.frame_s)
            audio = next(self._back(made, frames, timed, [(pos, stop)], CONTEXT))
            pos = stop
            if learning:
                here = float(np.abs(audio).max()) if audio.size else 0.0
                peak = max(peak, here)
                if gain is None:  # the voice's first sentence (decoded whole): its own level
                    gain = LEVEL / max(here, 1e-4)
            assert gain is not None
            pcm = _pcm(audio, gain)
            if pace is not None:
                pace.handed(len(pcm) / self.sample_rate)
            yield pcm
        if learning:
            parts.heard(peak)

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
        """piper's raw float output (-1..1) for each span of frames, each decoded with
        ``ctx`` frames of context on either side."""
        assert self._parts is not None
        for start, stop in spans:
            lo, hi = max(0, start - ctx), min(frames, stop + ctx)
            window = {k: (v[..., lo:hi] if k in timed else v) for k, v in made.items()}
            with self._lock:
                began = time.perf_counter()
                out = self._parts.back.run(None, window)[0].reshape(-1)
                self._parts.decoded(hi - lo, time.perf_counter() - began)
            hop = len(out) // (hi - lo)
            self._parts.frame_s = hop / self.sample_rate
            yield out[(start - lo) * hop:(stop - lo) * hop]


def _pcm(audio: np.ndarray, gain: float) -> np.ndarray:
    """Raw output scaled by ``gain``, bent softly above :data:`KNEE`, as int16."""
    y = audio * gain
    loud = np.abs(y) > KNEE
    if loud.any():
        over = np.abs(y[loud]) - KNEE
        y[loud] = np.sign(y[loud]) * (KNEE + (1 - KNEE) * np.tanh(over / (1 - KNEE)))
    return (y * 32767).astype(np.int16)


def _load(voice_path: Path, config_path: Path, threads: int) -> tuple[Any, _Parts | None]:
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
    try:
        halves = onnx_split.split(voice_path.read_bytes(), DECODER_PREFIX)
        if halves is not None:
            front = session(halves.front)
            parts = _Parts(front=front, back=session(halves.back), boundary=halves.boundary,
                           front_inputs={i.name for i in front.get_inputs()})
    except Exception as exc:  # SplitError, or onnxruntime refusing a half: run it whole
        log.warning("the piper voice %s runs whole: its cut failed: %s", voice_path.name, exc)
    # piper's own object phonemizes; it runs the model only when the voice did not cut.
    whole = session(str(voice_path)) if parts is None else parts.front
    voice = PiperVoice(config=config, session=whole, espeak_data_dir=Path(ESPEAK_DATA_DIR),
                       download_dir=Path.cwd())
    return voice, parts
