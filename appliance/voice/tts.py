"""Text to speech with piper, one sentence at a time. Blocking: call from a worker thread.

A piper voice is cut in two when it loads (:mod:`appliance.voice.onnx_split`): the
part that reads the text and makes the latent frames of a sentence, and the decoder
that turns frames into samples. The decoder's output for a frame depends only on
the frames near it (HiFi-GAN's receptive field, :data:`CONTEXT`), so it can run on
the first frames of a sentence alone: :meth:`Synthesizer.stream` hands out the
first ~0.37 s of a long first sentence once that much is decoded, and the rest
when it is, the same samples as a whole run to within float rounding. Before
this, the first sentence was cut in its text after a few words, which cost a
second run and broke its intonation.

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
#: A first sentence shorter than this (~1.5 s) is decoded whole: its whole run takes
#: about what the cut's first piece and second run would (measured on 2 cores: the
#: text part of a short sentence is ~20 ms either way, the decoder ~0.35 ms a frame).
MIN_CUT_FRAMES = 4 * FIRST_FRAMES
#: Latent frames of context decoded on each side of a cut. piper's decoder (HiFi-GAN
#: V1: a 7-wide input convolution, upsampling 8, 8, 2, 2 with residual blocks of
#: kernels 3, 7, 11 and dilations 1, 3, 5) sees about 12 frames to each side; for
#: en_US-joe-medium a cut with 12 differs from a whole run by 5.5e-7, with 8 by 1.5e-4
#: (tests/voice/test_tts_stream.py checks both). 16 leaves a margin for other exports;
#: it costs 8 frames more decoding a cut sentence than 12 (~3 ms at 2 threads here).
CONTEXT = 16
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

    @property
    def gain(self) -> float | None:
        return LEVEL / statistics.median(self.peaks) if self.peaks else None

    @property
    def learning(self) -> bool:
        return len(self.peaks) < LEVEL_SENTENCES

    def heard(self, peak: float) -> None:
        if self.learning and np.isfinite(peak) and peak > 1e-4:
            self.peaks.append(peak)


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
            yield np.concatenate(list(self._sentence(ids, speed, steady, cut=False)))

    def stream(self, text: str, speed: float = 1.0, *, steady: bool = False,
               ) -> Iterator[np.ndarray]:
        """As :meth:`synthesize`, but a long first sentence (:data:`MIN_CUT_FRAMES`)
        comes in two arrays once the voice has its gain (:attr:`streams`): its first
        :data:`FIRST_FRAMES` frames as soon as they are decoded, then the rest."""
        if self._parts is None:
            yield from self._piper(text, speed, steady)
            return
        for i, ids in enumerate(self._sentences(text)):
            yield from self._sentence(ids, speed, steady, cut=i == 0)

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

    def _sentence(self, ids: list[int], speed: float, steady: bool, *, cut: bool,
                  ) -> Iterator[np.ndarray]:
        """One sentence as int16: whole, or (``cut``, long enough, and the gain known)
        its first :data:`FIRST_FRAMES` frames and then the rest."""
        parts = self._parts
        assert parts is not None
        made, frames, timed = self._front(ids, speed, steady)
        gain = parts.gain
        spans = [(0, frames)]
        if cut and gain is not None and frames >= MIN_CUT_FRAMES:
            spans = [(0, FIRST_FRAMES), (FIRST_FRAMES, frames)]
        learning = parts.learning  # peaks are read only while the level is learnt
        peak = 0.0
        for audio in self._back(made, frames, timed, spans, CONTEXT):
            if learning:
                here = float(np.abs(audio).max()) if audio.size else 0.0
                peak = max(peak, here)
                if gain is None:  # the voice's first sentence (decoded whole): its own level
                    gain = LEVEL / max(here, 1e-4)
            assert gain is not None
            yield _pcm(audio, gain)
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
                out = self._parts.back.run(None, window)[0].reshape(-1)
            hop = len(out) // (hi - lo)
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
