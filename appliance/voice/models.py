"""The voice models, loaded once: Whisper, piper, Silero and the wake word engine.

:class:`VoiceModels` is the :class:`~appliance.voice.pipeline.VoiceEngine` every
session uses. Inference runs in its worker threads, never on the event loop:
two for STT and TTS (a sentence is synthesised while the next utterance is
transcribed), and one of its own for the VAD and the wake word, so a 1 s
transcription never delays barge-in detection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from appliance.voice.metrics import VoiceMetrics
from appliance.voice.settings import VoiceSettings
from appliance.voice.stt import Transcriber, Transcript
from appliance.voice.tts import Synthesizer
from appliance.voice.vad import Endpointer, SileroModel, SileroVad, VadEvent
from appliance.voice.wake import Detection, WakeDetector, open_detector

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Two inference threads: a sentence can be synthesised while the next utterance is transcribed.
INFERENCE_THREADS = 2


class VoiceModels:
    """Speech models and the threads they run in; ``load`` first, ``close`` at the end."""

    def __init__(self, settings: VoiceSettings) -> None:
        self.settings = settings
        self.stt: Transcriber | None = None
        self.tts: Synthesizer | None = None
        self.vad_model: SileroModel | None = None
        self._vad_pool = ThreadPoolExecutor(1, thread_name_prefix="voice-vad")
        self._pool = ThreadPoolExecutor(INFERENCE_THREADS, thread_name_prefix="voice")
        self.stats = {"transcriptions": 0, "syntheses": 0}
        self.metrics_ = VoiceMetrics()
        self.loaded = asyncio.Event()
        """Set once the models are loaded (servers that answer during loading wait on it)."""

    async def load(self) -> None:
        """Load every model in the worker threads; a missing or broken one raises."""
        s = self.settings
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        vad_model, stt, tts = await asyncio.gather(
            loop.run_in_executor(self._vad_pool, SileroModel),
            loop.run_in_executor(self._pool, lambda: Transcriber(
                s.stt_model, threads=s.stt_threads, language=s.language,
                min_window_s=s.stt_min_window_s, beam_size=s.stt_beam_size,
                alternatives=s.stt_alternatives)),
            loop.run_in_executor(self._pool, Synthesizer, s.tts_voice))
        await loop.run_in_executor(self._pool, stt.warm_up)
        if s.wake_words:  # a missing or broken engine fails the start, not the first session
            await loop.run_in_executor(self._vad_pool, lambda: self._open_wake().close())
        self.vad_model, self.stt, self.tts = vad_model, stt, tts
        self.loaded.set()
        log.info("voice loaded in %.1fs: whisper %s, piper %s (%d Hz)", time.monotonic() - t0,
                 s.stt_model, s.tts_voice.name, tts.sample_rate)

    def close(self) -> None:
        """Stop the worker threads; queued inference is cancelled."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._vad_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ VoiceEngine

    @property
    def tts_rate(self) -> int:
        assert self.tts is not None
        return self.tts.sample_rate

    def new_endpointer(self) -> Endpointer:
        assert self.vad_model is not None
        return Endpointer(SileroVad(self.vad_model),
                          trailing_silence_s=self.settings.trailing_silence_s,
                          max_utterance_s=self.settings.max_utterance_s)

    async def vad(self, endpointer: Endpointer, samples: np.ndarray) -> list[VadEvent]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._vad_pool, endpointer.feed, samples)

    async def new_wake_detector(self) -> WakeDetector:
        """A detector for one stream, built on the thread that feeds and closes it."""
        return await asyncio.get_running_loop().run_in_executor(self._vad_pool, self._open_wake)

    def _open_wake(self) -> WakeDetector:
        s = self.settings
        return open_detector(s.wake_engine, s.wake_words, dict(s.wake_sensitivity))

    async def close_wake(self, detector: WakeDetector) -> None:
        """Closed on the thread that feeds it, so after any chunk still being fed."""
        try:
            closing = asyncio.get_running_loop().run_in_executor(self._vad_pool, detector.close)
        except RuntimeError:
            # The pool is shut down (the daemon stops) and a chunk may still be in the
            # detector on its thread: leave it to be freed with the process.
            return
        await closing

    async def wake(self, detector: WakeDetector, pcm: bytes) -> list[Detection]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._vad_pool, detector.feed, pcm)

    async def transcribe(self, samples: np.ndarray, **options: Any) -> Transcript:
        """``options``: those of :meth:`Transcriber.transcribe` (language, prompt, ...)."""
        assert self.stt is not None
        self.stats["transcriptions"] += 1
        loop = asyncio.get_running_loop()
        run = functools.partial(self.stt.transcribe, samples, **options)
        return await loop.run_in_executor(self._pool, self.metrics_.timed, "stt", run,
                                          lambda t: t.duration_s)

    async def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        """int16 mono at :attr:`tts_rate`."""
        assert self.tts is not None
        self.stats["syntheses"] += 1
        loop = asyncio.get_running_loop()
        run = functools.partial(self.tts.synthesize_all, text, speed)
        rate = self.tts.sample_rate
        return await loop.run_in_executor(self._pool, self.metrics_.timed, "tts", run,
                                          lambda pcm: len(pcm) / rate)

    async def synthesize_stream(self, text: str, speed: float = 1.0,
                                ) -> AsyncIterator[np.ndarray]:
        """int16 mono at :attr:`tts_rate`, sentence by sentence, a first sentence in
        pieces (:meth:`Synthesizer.stream`): each piece as soon as it is made."""
        assert self.tts is not None
        self.stats["syntheses"] += 1
        loop = asyncio.get_running_loop()
        pieces = self.tts.stream(text, speed)
        rate = self.tts.sample_rate
        took = audio_s = 0.0

        def step() -> tuple[np.ndarray | None, float]:  # timed in the thread, as `timed`
            t0 = time.perf_counter()
            return next(pieces, None), time.perf_counter() - t0

        # The next piece is made while this one is sent (one ahead, no more).
        ahead = loop.run_in_executor(self._pool, step)
        try:
            while True:
                piece, spent = await ahead
                took += spent
                if piece is None:
                    break
                ahead = loop.run_in_executor(self._pool, step)
                audio_s += len(piece) / rate
                yield piece
        finally:
            ahead.cancel()  # a piece made for a listener who left is dropped
            self.metrics_.record("tts", took, audio_s)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Other blocking audio work (decoding, resampling a file) in the inference threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def metrics(self) -> Iterable[Any]:
        return self.metrics_.families()
