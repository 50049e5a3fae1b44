"""Speech to text with faster-whisper (CTranslate2, int8 on the CPU). Blocking: call from a
worker thread.

Whisper's encoder normally always looks at 30 s of audio, which costs ~2 s on a
2-core box whatever the utterance length. Like whisper.cpp's ``audio_ctx``, we
encode only a window fitted to the utterance (at least ``min_window_s``) and
decode greedily with repetition guards, which makes a short question ~5x
faster; utterances longer than the window take faster-whisper's normal path.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.voice.audio import PIPELINE_RATE
from appliance.voice.errors import ModelLoadError

#: Whisper's full window: 30 s of features at 100 frames per second.
FULL_WINDOW_S = 30
FRAMES_PER_S = 100
#: Silence kept after the speech inside the fitted window; less invites hallucinated repeats.
TAIL_MARGIN_S = 2.0
#: Decoding bound for the fitted path: tokens per second of audio, plus a constant.
TOKENS_PER_S = 6
TOKENS_BASE = 12
NO_REPEAT_NGRAM = 3
REPETITION_PENALTY = 1.1


@dataclass(frozen=True)
class Transcript:
    """What was said, in which language, over how much audio."""

    text: str
    language: str
    duration_s: float


class Transcriber:
    """A loaded Whisper model; ``transcribe`` is thread-safe (calls are serialised)."""

    def __init__(self, model_dir: Path, *, threads: int = 0, language: str = "auto",
                 min_window_s: float = 10.0) -> None:
        from faster_whisper import WhisperModel

        if not (model_dir / "model.bin").is_file():
            raise ModelLoadError(f"no faster-whisper model in {model_dir} (missing model.bin; "
                                 "run `hybrid-agent models fetch` or set voice.stt_model)")
        try:
            self._model = WhisperModel(str(model_dir), device="cpu", compute_type="int8",
                                       cpu_threads=threads or (os.cpu_count() or 1))
        except Exception as exc:
            raise ModelLoadError(f"cannot load the Whisper model in {model_dir}: {exc}") from exc
        self.model_dir = model_dir
        self.language = None if language in ("", "auto") else language
        self.min_window_s = min(float(FULL_WINDOW_S), min_window_s)
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray) -> Transcript:
        """Transcribe 16 kHz mono float32 audio."""
        samples = samples.astype(np.float32, copy=False)
        duration = len(samples) / PIPELINE_RATE
        with self._lock:
            if duration + TAIL_MARGIN_S <= FULL_WINDOW_S and self.min_window_s < FULL_WINDOW_S:
                text, language = self._fitted(samples, duration)
            else:
                text, language = self._full(samples)
        return Transcript(text=text, language=language, duration_s=round(duration, 3))

    def warm_up(self) -> None:
        """Run once on silence so the first real request does not pay for lazy setup."""
        self.transcribe(np.zeros(PIPELINE_RATE, np.float32))

    def _full(self, samples: np.ndarray) -> tuple[str, str]:
        segments, info = self._model.transcribe(
            samples, language=self.language, beam_size=1, vad_filter=False,
            condition_on_previous_text=False, without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip(), info.language

    def _fitted(self, samples: np.ndarray, duration: float) -> tuple[str, str]:
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        model = self._model
        features = model.feature_extractor(samples)
        window_s = min(FULL_WINDOW_S,
                       max(self.min_window_s, math.ceil(duration + TAIL_MARGIN_S)))
        encoded = model.encode(pad_or_trim(features, int(window_s * FRAMES_PER_S)))
        language = self.language
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
        result = model.model.generate(
            encoded, [[*tokenizer.sot_sequence, tokenizer.no_timestamps]], beam_size=1,
            max_length=max_length, suppress_blank=True, suppress_tokens=[-1],
            no_repeat_ngram_size=NO_REPEAT_NGRAM, repetition_penalty=REPETITION_PENALTY)
        tokens = [t for t in result[0].sequences_ids[0] if t < tokenizer.eot]
        return tokenizer.decode(tokens).strip(), language
