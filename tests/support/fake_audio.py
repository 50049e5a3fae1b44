"""A FAKE microphone and a FAKE speaker: the sound card is the one thing that cannot exist here.

:class:`FakeMicrophone` plays a script of WAV audio and silence as 30 ms chunks
of 16 kHz 16-bit mono PCM, paced in real time like a sound card, and notes
when it delivered what. :class:`FakeSpeaker` is an ``AudioOutput`` that
"plays" in real time by the clock and notes what was played and when it was
stopped. A microphone that :meth:`~FakeMicrophone.hears` a speaker gets what
the speaker plays mixed into its chunks at the moment it plays (the echo of a
room without echo cancellation). Everything between them (VAD, STT, the reply,
TTS) is real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import numpy as np

from appliance.voice.audio import (
    CHUNK_MS,
    PIPELINE_RATE,
    float_to_pcm16,
    pcm16_to_float,
    read_wav,
    resample,
    to_pipeline,
)

CHUNK_SAMPLES = PIPELINE_RATE * CHUNK_MS // 1000


def wav_to_pcm16(data: bytes) -> bytes:
    """Any WAV -> 16 kHz mono 16-bit PCM, what the microphone delivers."""
    return float_to_pcm16(to_pipeline(read_wav(data)))


@dataclass
class Marker:
    """Stream position (seconds of audio delivered) and wall time when a script step began."""

    name: str
    stream_s: float
    wall: float


class FakeMicrophone:
    """Yields 30 ms chunks in real time from a script of PCM, silence and waits."""

    def __init__(self) -> None:
        self._script: list[tuple[str, object]] = []
        self.markers: list[Marker] = []
        self.delivered_s = 0.0
        self._room: tuple[FakeSpeaker, float] | None = None

    def hears(self, speaker: FakeSpeaker, gain: float = 1.0) -> FakeMicrophone:
        """Mix what ``speaker`` plays into the chunks, scaled by ``gain`` (an echo)."""
        self._room = (speaker, gain)
        return self

    def speech(self, pcm16: bytes, name: str = "speech") -> FakeMicrophone:
        self._script.append(("pcm", (name, pcm16)))
        return self

    def silence(self, seconds: float, name: str = "silence") -> FakeMicrophone:
        n = int(seconds * PIPELINE_RATE)
        self._script.append(("pcm", (name, np.zeros(n, np.int16).tobytes())))
        return self

    def silence_until(self, event: asyncio.Event, name: str = "wait") -> FakeMicrophone:
        """Keep delivering silence until ``event`` is set (e.g. playback started)."""
        self._script.append(("until", (name, event)))
        return self

    def marker(self, name: str) -> Marker:
        return next(m for m in self.markers if m.name == name)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        start = time.monotonic()
        silence = np.zeros(CHUNK_SAMPLES, np.int16).tobytes()
        for kind, arg in self._script:
            name = arg[0]  # type: ignore[index]
            self.markers.append(Marker(name, self.delivered_s, time.monotonic()))
            if kind == "until":
                event: asyncio.Event = arg[1]  # type: ignore[index]
                while not event.is_set():
                    await self._pace(start)
                    yield self._echoed(silence, start)
                    self.delivered_s += CHUNK_MS / 1000
                continue
            pcm: bytes = arg[1]  # type: ignore[index]
            step = CHUNK_SAMPLES * 2
            for i in range(0, len(pcm), step):
                await self._pace(start)
                yield self._echoed(pcm[i:i + step], start)
                self.delivered_s += len(pcm[i:i + step]) / 2 / PIPELINE_RATE
        self.markers.append(Marker("end", self.delivered_s, time.monotonic()))

    async def close(self) -> None:
        """Nothing to release; here so the fake is a drop-in for the ALSA source."""

    def _echoed(self, chunk: bytes, start: float) -> bytes:
        if self._room is None:
            return chunk
        speaker, gain = self._room
        x = pcm16_to_float(chunk)
        return float_to_pcm16(x + gain * speaker.sound(start + self.delivered_s, len(x)))

    async def _pace(self, start: float) -> None:
        # Real time: chunk n is due at start + n * 30 ms, like a sound card's period.
        due = start + self.delivered_s
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class Played:
    text: str
    samples: int
    rate: int
    start: float
    end: float
    handed: float
    """When play() was called; ``start`` is later when earlier audio was still playing."""


@dataclass
class FakeSpeaker:
    """An AudioOutput that plays by the clock: audio handed over at t plays from
    max(t, end of the previous audio) for its duration."""

    played: list[Played] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    stopped_at: float | None = None
    busy_until: float = 0.0
    stops: list[float] = field(default_factory=list)
    _sound: list[tuple[float, float, np.ndarray]] = field(default_factory=list)

    async def play(self, pcm: bytes, sample_rate: int, text: str) -> None:
        now = time.monotonic()
        start = max(now, self.busy_until)
        samples = len(pcm) // 2
        self.busy_until = start + samples / sample_rate
        self.played.append(Played(text, samples, sample_rate, start, self.busy_until, now))
        self._sound.append((now, start, resample(pcm16_to_float(pcm), sample_rate)))
        self.started.set()

    async def stop(self) -> None:
        now = time.monotonic()
        if self.stopped_at is None:
            self.stopped_at = now
        self.stops.append(now)
        self.busy_until = min(self.busy_until, now)

    def sound(self, t0: float, n: int) -> np.ndarray:
        """What the speaker gives out from wall time ``t0`` for ``n`` samples at 16 kHz."""
        out = np.zeros(n, np.float32)
        for handed, start, audio in self._sound:
            cut = min((s for s in self.stops if s >= handed), default=None)
            audible = len(audio) if cut is None else round((cut - start) * PIPELINE_RATE)
            first = round((t0 - start) * PIPELINE_RATE)
            lo, hi = max(first, 0), min(first + n, len(audio), audible)
            if hi > lo:
                out[lo - first:hi - first] += audio[lo:hi]
        return out

    def seconds_heard(self) -> float:
        """Audio actually played: everything before the stop, nothing after."""
        cut = self.stopped_at if self.stopped_at is not None else float("inf")
        return sum(max(0.0, min(p.end, cut) - p.start) for p in self.played)

    def seconds_queued(self) -> float:
        return sum(p.samples / p.rate for p in self.played)
