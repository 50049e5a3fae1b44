"""Wake word detection over Wyoming: ``detect``, ``audio-start``/``-chunk``/``-stop`` ->
``detection`` (each time a word is heard) or, at ``audio-stop``, ``not-detected``.

What Home Assistant's satellites do with wyoming-openwakeword: ``detect`` names
the words to listen for (none: the box's ``voice.wake_words``, or every word
its engine ships when that list is empty), then audio streams for as long as
the satellite listens. The detector is the box's own (``voice.wake_engine``,
the cascade by default), fed 16 kHz mono converted from whatever rate, width
and channels the stream announces. The stream itself is unbounded (a satellite
listens for hours); what is held at once is one chunk, and every chunk is
bounded by the framing. Detection runs in a worker thread, a chunk at a time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, WakeModel, WakeProgram
from wyoming.wake import Detection, NotDetected

from appliance import __version__
from appliance.voice.audio import StreamResampler, float_to_pcm16, pcm_to_mono
from appliance.voice.component import VoiceComponent
from appliance.voice.errors import ModelLoadError
from appliance.voice.wake import CASCADE, MICRO, OPEN, PHRASES, WakeDetector, open_detector
from appliance.voice.wake import shipped_words as engine_words
from appliance.wyoming.access import Level
from appliance.wyoming.asr import AudioFormat
from appliance.wyoming.server import Send

log = logging.getLogger(__name__)

#: At most this many names in one ``detect``.
MAX_NAMES = 8
ENGINES = {
    MICRO: Attribution(name="microWakeWord (Kevin Ahrendt), run by pymicro-wakeword",
                       url="https://github.com/kahrendt/microWakeWord"),
    OPEN: Attribution(name="openWakeWord (David Scripka), run by pyopen-wakeword",
                      url="https://github.com/dscripka/openWakeWord"),
}
ENGINES[CASCADE] = Attribution(name=f"{ENGINES[MICRO].name}, checked by openWakeWord",
                               url=ENGINES[MICRO].url)


class WakeService:
    """The box's wake word detector as a Wyoming ``wake`` program."""

    kind = "wake"
    level = Level.SPEECH

    def __init__(self, voice: VoiceComponent) -> None:
        self.voice = voice
        self.engine = voice.settings.wake_engine
        try:
            self.words = sorted(engine_words(self.engine))
        except ImportError:  # the engine's package is missing: no wake program is offered
            self.words = []
        self.default_words = list(voice.settings.wake_words) or self.words
        self.sensitivity = dict(voice.settings.wake_sensitivity)

    def program(self) -> WakeProgram | None:
        if not self.words:
            return None  # the engine's package is missing: nothing to offer
        attribution = ENGINES.get(self.engine, ENGINES[MICRO])
        models = [WakeModel(name=word, attribution=attribution, installed=True,
                            description=PHRASES.get(word, word), version=None,
                            languages=["en"], phrase=PHRASES.get(word, word))
                  for word in self.words]
        return WakeProgram(name="hybrid-agent-wake", attribution=attribution, installed=True,
                           description=f"hybrid-agent wake words ({self.engine})",
                           version=__version__, models=models)

    def open(self, send: Send) -> WakeSession:
        return WakeSession(self, send)

    def names(self, requested: Any) -> list[str]:
        """The words a ``detect`` asks for; ValueError naming one this box lacks."""
        if requested is None or requested == []:
            return self.default_words
        if not isinstance(requested, list) or len(requested) > MAX_NAMES:
            raise ValueError(f"names must be a list of at most {MAX_NAMES} wake word names")
        names: list[str] = []
        for name in requested:
            if not isinstance(name, str) or name not in self.words:
                shown = str(name)[:32]
                raise ValueError(f"no wake word {shown!r} here; this box has "
                                 f"{', '.join(self.words)}")
            if name not in names:
                names.append(name)
        return names


class WakeSession:
    """One connection's wake word stream."""

    types = frozenset({"detect", "audio-start", "audio-chunk", "audio-stop"})
    opens = frozenset({"detect"})

    def __init__(self, service: WakeService, send: Send) -> None:
        self.service = service
        self.send = send
        self.names: list[str] = service.default_words
        self.format: AudioFormat | None = None
        self.resampler: StreamResampler | None = None
        self.detector: WakeDetector | None = None
        self.detected = False
        self.failed = False
        self.bad_names = False  # the last detect named a word this box lacks
        # Held while a chunk is in the detector: a connection that ends mid-chunk closes the
        # detector only after the worker thread is done with it.
        self._in_use = threading.Lock()

    async def on_event(self, event: Event) -> None:
        kind = event.type
        if kind == "detect":
            await self._end_stream()
            self.failed = self.bad_names = False
            try:
                self.names = self.service.names(event.data.get("names"))
            except ValueError as exc:
                self.bad_names = True
                await self._fail(str(exc), "unknown-wake-word")
        elif kind == "audio-start":
            await self._end_stream()
            # A stream that failed is over; a detect that named no word of ours is not.
            self.failed = self.bad_names
            await self._start(event.data)
        elif kind == "audio-chunk":
            await self._chunk(event)
        elif kind == "audio-stop":
            if not self.failed and not self.detected:
                await self.send(NotDetected().event())
            await self._end_stream()
            self.failed = self.bad_names

    async def close(self) -> None:
        await self._end_stream()

    # ------------------------------------------------------------ internals

    async def _start(self, data: dict[str, Any]) -> bool:
        if self.failed:
            return False
        try:
            fmt = AudioFormat.from_data(data)
        except ValueError as exc:
            await self._fail(str(exc), "bad-audio-format")
            return False
        try:
            self.detector = await asyncio.to_thread(
                open_detector, self.service.engine, self.names,
                {w: s for w, s in self.service.sensitivity.items() if w in self.names})
        except ModelLoadError as exc:
            await self._fail(str(exc), "wake-unavailable")
            return False
        self.format = fmt
        self.resampler = StreamResampler(fmt.rate)
        self.detected = False
        return True

    async def _chunk(self, event: Event) -> None:
        if self.failed:
            return
        if self.format is None and not await self._start(event.data):
            return
        assert self.format is not None and self.detector is not None
        assert self.resampler is not None
        fmt = self.format
        try:
            fmt.check_chunk(event.data)
        except ValueError as exc:
            await self._fail(str(exc), "bad-audio-format")
            return
        found = await asyncio.to_thread(_detect, self.detector, self.resampler,
                                        event.payload or b"", fmt, self._in_use)
        for hit in found:
            self.detected = True
            await self.send(Detection(name=hit.word, timestamp=int(hit.end_s * 1000)).event())

    async def _end_stream(self) -> None:
        detector, self.detector = self.detector, None
        self.format = self.resampler = None
        self.detected = False
        if detector is not None:
            await asyncio.to_thread(_close, detector, self._in_use)

    async def _fail(self, text: str, code: str) -> None:
        self.failed = True
        await self._end_stream()
        await self.send(Error(text=text, code=code).event())


def _detect(detector: WakeDetector, resampler: StreamResampler, pcm: bytes,
            fmt: AudioFormat, in_use: threading.Lock) -> list[Any]:
    """One chunk: to 16-bit mono, to 16 kHz, through the detector (a worker thread's)."""
    with in_use:
        pcm16 = resampler.process(float_to_pcm16(pcm_to_mono(pcm, fmt.width, fmt.channels)))
        return detector.feed(pcm16) if pcm16 else []


def _close(detector: WakeDetector, in_use: threading.Lock) -> None:
    with in_use:
        detector.close()
