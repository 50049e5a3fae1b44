"""How fast speech is turned into text and back: histograms for /metrics.

Timed inside the inference thread, so a request's wait in the voice queue is not
counted as model time; the real-time factor is model seconds per second of audio.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client import Counter, Histogram
from prometheus_client.core import Metric

T = TypeVar("T")

SECONDS_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
RTF_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class VoiceMetrics:
    """STT and TTS seconds, audio seconds and real-time factor (registry-less; collected
    by the node's collector through ``VoiceComponent.metrics()``)."""

    def __init__(self) -> None:
        self.seconds = Histogram("hybrid_agent_voice_inference_seconds",
                                 "Model time of one transcription or synthesis",
                                 ["kind"], buckets=SECONDS_BUCKETS, registry=None)
        self.rtf = Histogram("hybrid_agent_voice_real_time_factor",
                             "Model seconds per second of audio (below 1: faster than "
                             "real time)", ["kind"], buckets=RTF_BUCKETS, registry=None)
        self.audio = Counter("hybrid_agent_voice_audio_seconds",
                             "Seconds of audio transcribed or synthesised", ["kind"],
                             registry=None)

    def timed(self, kind: str, fn: Callable[[], T], audio_s: Callable[[T], float]) -> T:
        """Run ``fn`` (in the inference thread) and record it; ``audio_s`` of its result."""
        t0 = time.perf_counter()
        out = fn()
        self.record(kind, time.perf_counter() - t0, audio_s(out))
        return out

    def record(self, kind: str, took: float, seconds: float) -> None:
        """One transcription or synthesis: ``took`` model seconds for ``seconds`` of audio."""
        self.seconds.labels(kind).observe(took)
        if seconds > 0:
            self.audio.labels(kind).inc(seconds)
            self.rtf.labels(kind).observe(took / seconds)

    def families(self) -> Iterator[Metric]:
        for metric in (self.seconds, self.rtf, self.audio):
            yield from metric.collect()
