"""Speech to text with faster-whisper (CTranslate2, int8 on the CPU). Blocking: call from a
worker thread.

Whisper's encoder normally always looks at 30 s of audio, which costs ~2 s on a
2-core box whatever the utterance length. Like whisper.cpp's ``audio_ctx``, we
encode only a window fitted to the utterance (at least ``min_window_s``) and
decode with a beam and repetition guards, which makes a short question ~5x
faster; utterances longer than the window take faster-whisper's normal path.

A fitted window is not what Whisper was trained on, and now and then it shows: of
240 piper draws of three two-part requests (3-4 s), the 5 s window misread 14
(5.8 %): the second half dropped ("What is the weather tomorrow"), a word stuck
("Then then play some music"), the language taken for Hawaiian. Every one of those
readings scored below ``RECHECK_BELOW`` and every one came right on a wider window,
so a reading that doubtful is read again on ``RECHECK_WINDOW_S`` and the likelier
reading kept.

Two more things the fitted window taught. The window past the audio is silence, as
Whisper heard it in training (audio zeros), not faster-whisper's padding of the features
with zeros, which is the level of a steady noise: with that, 30 of 64 draws of the
two-part requests were heard exactly, with silence 38-40. And the repetition penalty that
keeps Whisper from starting the utterance again after its end also drops a last word
that was said before ("remind me to water [the plants]", "under [the] flower pot", "what
is on [it]"): a reading that stops without a sentence's end is decoded again without the
penalty, and the words it has after the first reading's last one, to the end of that
sentence, are added (``extension``). Restarts that slip through are cut (``unrepeated``).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from appliance.voice.audio import PIPELINE_RATE
from appliance.voice.errors import ModelLoadError
from appliance.voice.readings import ends_sentence, extension, readings, stops_short, unrepeated

# CTranslate2's x86 build multiplies with oneMKL, which picks its own thread count
# ("dynamic") from a probe of the CPU topology that pins a thread to each CPU in
# turn. The shipped unit forbids that syscall, and then oneMKL falls back to one
# thread: the same daemon ran Whisper's matrices on 2 threads without the sandbox
# and on 1 under it (issue 21). Not dynamic, oneMKL uses the threads Whisper is
# given (voice.stt_threads), in and out of the sandbox. Read when oneMKL starts,
# so it is set before anything imports CTranslate2.
os.environ.setdefault("MKL_DYNAMIC", "FALSE")

#: Whisper's full window: 30 s of features at 100 frames per second.
FULL_WINDOW_S = 30
FRAMES_PER_S = 100
#: Silence kept after the speech inside the fitted window; less invites hallucinated repeats.
TAIL_MARGIN_S = 2.0
#: Zero samples after the audio before its features are taken: Whisper's FFT window (400),
#: so the last frames are of silence and set the level the rest of the window is padded to.
SILENCE_FRAME = 400
#: Decoding bound for the fitted path: tokens per second of audio, plus a constant.
TOKENS_PER_S = 6
TOKENS_BASE = 12
NO_REPEAT_NGRAM = 3
REPETITION_PENALTY = 1.1
#: Whisper's decoder context is 448 tokens; a prompt may take up to half of it.
MAX_PROMPT_TOKENS = 223
#: Other readings of a short utterance kept from the beam (``Transcript.alternatives``; how
#: far below the best one's score they may be: ``readings.ALTERNATIVE_MARGIN``).
MAX_ALTERNATIVES = 4
#: A fitted reading whose score (mean log probability per token) is below this is read
#: again on a wider window (the module docstring): the 14 misreadings scored -0.56 to
#: -2.54, the right readings of the same draws -0.12 to -0.25 on the full window, and 9 of
#: 226 right fitted readings fell below it (their second reading costs time, not words).
RECHECK_BELOW = -0.5
#: The window a doubtful reading is read again on (the full one if it was that wide
#: already): 10 s read all 22 misreadings kept from those draws right, as did 15, 20 and
#: 30 s, at 0.25 s a reading here against 0.69 s for the full window.
RECHECK_WINDOW_S = 10


@dataclass(frozen=True)
class Transcript:
    """What was said, in which language, over how much audio."""

    text: str
    language: str
    duration_s: float
    segments: tuple[Segment, ...] = ()
    """With timestamps (``transcribe(timestamps=True)``), the timed pieces of ``text``."""
    alternatives: tuple[str, ...] = ()
    """Other readings of the same audio that the beam found nearly as likely, best first
    (short utterances with ``stt_beam_size`` > 1): "Stop talking." behind "Start talking.".
    A listener that understands only some sentences (the everyday intents) may take the
    first it understands; nothing else should."""
    rechecked: bool = False
    """The fitted window's reading was doubtful and the audio was read again on a wider
    window (``RECHECK_BELOW``)."""


@dataclass(frozen=True)
class Word:
    """One word with its time span in seconds."""

    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """A timed piece of a transcript, as Whisper decoded it."""

    start: float
    end: float
    text: str
    tokens: tuple[int, ...] = ()
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    words: tuple[Word, ...] = field(default=())


class Transcriber:
    """A loaded Whisper model; ``transcribe`` is thread-safe (calls are serialised)."""

    def __init__(self, model_dir: Path, *, threads: int, language: str = "auto",
                 min_window_s: float = 5.0, beam_size: int = 5,
                 alternatives: int = MAX_ALTERNATIVES,
                 recheck_below: float | None = RECHECK_BELOW) -> None:
        """``threads``: CPU threads of the model (the config's ``voice.stt_thread_count``);
        ``alternatives``: at most this many other readings (``Transcript.alternatives``);
        ``recheck_below``: a fitted reading scoring below this is read again on a wider
        window (None: never; for bench/stt_words.py)."""
        from faster_whisper import WhisperModel

        if not (model_dir / "model.bin").is_file():
            raise ModelLoadError(f"no faster-whisper model in {model_dir} (missing model.bin; "
                                 "run `hybrid-agent models fetch` or set voice.stt_model)")
        try:
            self._model = WhisperModel(str(model_dir), device="cpu", compute_type="int8",
                                       cpu_threads=threads)
        except Exception as exc:
            raise ModelLoadError(f"cannot load the Whisper model in {model_dir}: {exc}") from exc
        self.model_dir = model_dir
        self.language = None if language in ("", "auto") else language
        self.min_window_s = min(float(FULL_WINDOW_S), min_window_s)
        self.beam_size = max(1, beam_size)
        self.alternatives = max(0, alternatives)
        self.recheck_below = recheck_below
        self._lock = threading.Lock()

    @property
    def languages(self) -> list[str]:
        """Language codes the model knows (faster-whisper's list)."""
        return list(self._model.supported_languages)

    def transcribe(self, samples: np.ndarray, *, language: str | None = None, prompt: str = "",
                   temperature: float = 0.0, timestamps: bool = False, words: bool = False,
                   on_text: Callable[[str], None] | None = None,
                   recheck: bool = True) -> Transcript:
        """Transcribe 16 kHz mono float32 audio.

        ``language`` overrides the configured one; ``prompt`` is Whisper's initial
        prompt (spellings, context); ``timestamps`` (and ``words``) fill
        ``segments``, which needs the full 30 s window; ``on_text`` is called
        (in this thread) with each piece of text as it is decoded; ``recheck``
        False: never a second reading or decoding (a partial transcript of audio cut
        mid-word, which would often be doubtful and would hold the lock the final one
        needs).
        """
        samples = samples.astype(np.float32, copy=False)
        duration = len(samples) / PIPELINE_RATE
        options = _Options(language or self.language, prompt.strip(), temperature, recheck)
        with self._lock:
            if not timestamps and duration + TAIL_MARGIN_S <= FULL_WINDOW_S \
                    and self.min_window_s < FULL_WINDOW_S:
                read, rechecked = self._fitted(samples, duration, options)
                language = read.language
                text, alternatives = read.texts[0], tuple(read.texts[1:])
                if on_text is not None and text:
                    on_text(text)
                segments: tuple[Segment, ...] = ()
            else:
                text, language, segments = self._full(samples, options, timestamps, words,
                                                      on_text)
                alternatives, rechecked = (), False
        return Transcript(text=text, language=language, duration_s=round(duration, 3),
                          segments=segments, alternatives=alternatives, rechecked=rechecked)

    def warm_up(self) -> None:
        """Run once on silence so the first real request does not pay for lazy setup."""
        self.transcribe(np.zeros(PIPELINE_RATE, np.float32))

    def _full(self, samples: np.ndarray, options: _Options, timestamps: bool, words: bool,
              on_text: Callable[[str], None] | None,
              ) -> tuple[str, str, tuple[Segment, ...]]:
        pieces, info = self._model.transcribe(
            samples, language=options.language, beam_size=self.beam_size, vad_filter=False,
            condition_on_previous_text=False, without_timestamps=not timestamps,
            word_timestamps=words, initial_prompt=options.prompt or None,
            temperature=options.temperature)
        texts: list[str] = []
        segments: list[Segment] = []
        for piece in pieces:  # decoded lazily, one 30 s window after another
            text = piece.text.strip()
            if not text:
                continue
            if on_text is not None:
                on_text(text if not texts else " " + text)
            texts.append(text)
            if timestamps:
                segments.append(Segment(
                    start=round(piece.start, 3), end=round(piece.end, 3), text=piece.text,
                    tokens=tuple(piece.tokens), avg_logprob=piece.avg_logprob,
                    compression_ratio=piece.compression_ratio,
                    no_speech_prob=piece.no_speech_prob,
                    words=tuple(Word(round(w.start, 3), round(w.end, 3), w.word,
                                     round(w.probability, 4)) for w in piece.words or ())))
        return " ".join(texts).strip(), info.language, tuple(segments)

    def _fitted(self, samples: np.ndarray, duration: float, options: _Options,
                ) -> tuple[_Reading, bool]:
        """The best reading first, then up to MAX_ALTERNATIVES others (see Transcript);
        a doubtful reading is read again on a wider window (RECHECK_BELOW): True if so."""
        # Silence after the speech, not zeros in the features (the module docstring): the
        # features of the audio and a frame of silence, then more frames at silence's level
        # (the floor of the features; the same as the features of the window's audio
        # padded with zeros, for a fraction of the time).
        features = self._model.feature_extractor(np.pad(samples, (0, SILENCE_FRAME)))
        window_s = min(FULL_WINDOW_S,
                       max(self.min_window_s, math.ceil(duration + TAIL_MARGIN_S)))
        read = self._read(features, window_s, duration, options)
        again_s = recheck_window(window_s, read.score, read.texts[0], options,
                                 self.recheck_below)
        if again_s is None:
            return read, False
        again = self._read(features, again_s, duration, options)
        return (again if again.score > read.score else read), True

    def _read(self, features: np.ndarray, window_s: float, duration: float,
              options: _Options) -> _Reading:
        from faster_whisper.tokenizer import Tokenizer

        model = self._model
        frames = int(window_s * FRAMES_PER_S)
        window = features[:, :frames]
        if window.shape[1] < frames:
            window = np.pad(window, ((0, 0), (0, frames - window.shape[1])),
                            constant_values=features.min())
        encoded = model.encode(window)
        language = options.language
        if language is None:
            if model.model.is_multilingual:
                scores = model.model.detect_language(encoded)[0]
                language = scores[0][0].strip("<|>")
            else:
                language = "en"
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual,
                              task="transcribe", language=language)
        max_length = min(model.max_length if hasattr(model, "max_length") else 448,
                         int(TOKENS_PER_S * duration) + TOKENS_BASE)
        prompt: list[int] = []
        if options.prompt:
            prompt = [tokenizer.sot_prev,
                      *tokenizer.encode(" " + options.prompt)[-MAX_PROMPT_TOKENS:]]
        sampling = {"sampling_topk": 0, "sampling_temperature": options.temperature} \
            if options.temperature > 0 else {}
        hypotheses = 1 if sampling else min(self.beam_size, self.alternatives + 1)

        def decode(penalty: float) -> tuple[list[str], list[float]]:
            result = model.model.generate(
                encoded, [[*prompt, *tokenizer.sot_sequence, tokenizer.no_timestamps]],
                beam_size=self.beam_size, max_length=min(448, max_length + len(prompt)),
                suppress_blank=True,
                suppress_tokens=[-1], no_repeat_ngram_size=NO_REPEAT_NGRAM,
                repetition_penalty=penalty, num_hypotheses=hypotheses,
                return_scores=True, **sampling)[0]
            return ([unrepeated(tokenizer.decode([t for t in ids if t < tokenizer.eot]).strip())
                     for ids in result.sequences_ids], list(result.scores))

        texts, scores = decode(REPETITION_PENALTY)
        if options.recheck and not sampling and texts and texts[0] \
                and not ends_sentence(texts[0]):
            longer, _ = decode(1.0)
            more = extension(texts[0], longer[0]) if longer else ""
            if more:
                # The words are added, the score stays the penalised decoding's (the two
                # are not on one scale), and readings that stop short of them go.
                best = f"{texts[0]} {more}"
                kept = [(t, c) for t, c in zip(texts[1:], scores[1:], strict=False)
                        if not stops_short(t, best)]
                texts = [best, *(t for t, _ in kept)]
                scores = [scores[0], *(c for _, c in kept)]
        return _Reading(readings(texts, scores if hypotheses > 1 else []), language,
                        scores[0] if scores else -math.inf)


def recheck_window(window_s: float, score: float, text: str, options: _Options,
                   below: float | None) -> float | None:
    """The window a fitted reading is read again on, or None: not when it scored
    ``below`` or better, was already the full window, heard nothing (silence stays
    silence), was sampled (temperature > 0: a second sample kept for its score would be
    a best-of-two nobody asked for) or the caller asked for one reading only."""
    if below is None or score >= below or window_s >= FULL_WINDOW_S or not text \
            or options.temperature > 0 or not options.recheck:
        return None
    return RECHECK_WINDOW_S if window_s < RECHECK_WINDOW_S else FULL_WINDOW_S


@dataclass(frozen=True)
class _Reading:
    texts: list[str]
    """The best reading, then the others kept (``readings``)."""
    language: str
    score: float
    """The best hypothesis' mean log probability per token."""


@dataclass(frozen=True)
class _Options:
    language: str | None
    prompt: str
    temperature: float
    recheck: bool = True
