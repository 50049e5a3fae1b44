"""Text to speech over Wyoming, at the voice's native rate, a piece at a time.

``synthesize`` -> ``audio-start``, ``audio-chunk``..., ``audio-stop``: piper
speaks the text a sentence at a time, and each piece is sent as soon as it is
made; a long first sentence comes in two, its first ~0.37 s as soon as that is
decoded (:meth:`~appliance.voice.tts.Synthesizer.stream`), so the first audio
leaves long before the whole text is spoken.

Streaming (``synthesize-start``, ``synthesize-chunk``..., ``synthesize-stop``),
as wyoming-piper does it: the text arrives while an LLM writes it; every
complete piece gets its own ``audio-start``/``-chunk``/``-stop`` block while
more text keeps coming, and ``synthesize-stopped`` ends the stream. The
``synthesize`` Home Assistant sends inside a stream (for older servers) is
ignored there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, TtsProgram, TtsVoice, TtsVoiceSpeaker
from wyoming.tts import SynthesizeStopped

from appliance import __version__
from appliance.voice.component import VoiceComponent
from appliance.voice.errors import TextError
from appliance.voice.sentences import SentenceSplitter
from appliance.wyoming.access import Level
from appliance.wyoming.server import Send, wait_ready

log = logging.getLogger(__name__)

#: Samples per audio-chunk event (what wyoming-piper sends: ~46 ms at 22 kHz).
SAMPLES_PER_CHUNK = 1024
#: Largest voice config (.onnx.json) read for the voice's language and speakers.
MAX_VOICE_CONFIG_BYTES = 4 * 1024 * 1024
MAX_SPEAKERS = 1024
PIPER = Attribution(name="Piper (rhasspy)", url="https://github.com/rhasspy/piper")


class TtsService:
    """The box's piper voice as a Wyoming ``tts`` program."""

    kind = "tts"
    level = Level.SPEECH

    def __init__(self, voice: VoiceComponent) -> None:
        self.voice = voice
        path = voice.settings.tts_voice
        self.voice_name = path.name.removesuffix(".onnx") or "piper"
        self.language, self.speakers = _voice_facts(path)

    def program(self) -> TtsProgram:
        speakers = [TtsVoiceSpeaker(name=s) for s in self.speakers] or None
        voice = TtsVoice(name=self.voice_name, attribution=PIPER, installed=True,
                         description=self.voice_name, version=None,
                         languages=[self.language], speakers=speakers)
        return TtsProgram(name="hybrid-agent-tts", attribution=PIPER, installed=True,
                          description="hybrid-agent text to speech (piper)",
                          version=__version__, voices=[voice],
                          supports_synthesize_streaming=True)

    def open(self, send: Send) -> TtsSession:
        return TtsSession(self, send)

    def check_voice(self, data: dict[str, Any]) -> None:
        """ValueError unless the request's voice (if any) is this box's voice."""
        voice = data.get("voice")
        if voice is None:
            return
        if not isinstance(voice, dict):
            raise ValueError("voice must be an object like {\"name\": ...}")
        name = voice.get("name")
        if name is not None and name != self.voice_name:
            raise ValueError(f"no voice {str(name)[:64]!r} here; this box speaks with "
                             f"{self.voice_name}")


class TtsSession:
    """One connection's synthesis requests, one-shot or streamed."""

    types = frozenset({"synthesize", "synthesize-start", "synthesize-chunk",
                       "synthesize-stop"})
    opens: frozenset[str] = frozenset()

    def __init__(self, service: TtsService, send: Send) -> None:
        self.service = service
        self.voice = service.voice
        self.send = send
        self.stream: _Stream | None = None

    async def on_event(self, event: Event) -> None:
        kind = event.type
        if kind == "synthesize":
            if self.stream is None:
                await self._synthesize(event.data)
        elif kind == "synthesize-start":
            await self._end_stream()
            try:
                self.service.check_voice(event.data)
            except ValueError as exc:
                await self.send(Error(text=str(exc), code="bad-voice").event())
                return
            self.stream = _Stream(self)
        elif self.stream is None:
            await self.send(Error(text=f"{kind} without synthesize-start",
                                  code="not-streaming").event())
        elif kind == "synthesize-chunk":
            await self.stream.feed(event.data.get("text"))
        elif kind == "synthesize-stop":
            stream, self.stream = self.stream, None
            await stream.finish()

    async def close(self) -> None:
        await self._end_stream()

    async def _end_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            await stream.cancel()

    async def _synthesize(self, data: dict[str, Any]) -> None:
        try:
            self.service.check_voice(data)
        except ValueError as exc:
            await self.send(Error(text=str(exc), code="bad-voice").event())
            return
        try:
            text = self.voice.check_text(data.get("text"))
        except TextError as exc:
            await self.send(Error(text=str(exc), code="bad-text").event())
            return
        if not await wait_ready(self.voice.loaded, self.voice.start_timeout_s, self.send):
            return
        rate = self.voice.tts_rate
        await self.send(AudioStart(rate=rate, width=2, channels=1).event())
        async for audio in self.voice.synthesize_stream(text):
            await send_audio(self.send, audio, rate)
        await self.send(AudioStop().event())


class _Stream:
    """A streamed request: text in as it comes, one audio block per piece out, in order."""

    def __init__(self, session: TtsSession) -> None:
        self.session = session
        self.voice = session.voice
        self.splitter = SentenceSplitter()
        self.chars = 0
        self.failed = False
        self.pieces: asyncio.Queue[str | None] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._speak())

    async def feed(self, text: Any) -> None:
        if self.failed:
            return
        if not isinstance(text, str):
            await self._fail("synthesize-chunk text must be a string", "bad-text")
            return
        limit = self.voice.settings.max_tts_chars
        self.chars += len(text)
        if self.chars > limit:
            await self._fail(f"streamed text is longer than {limit} characters "
                             "(voice.max_tts_chars)", "text-too-long")
            return
        for piece in self.splitter.feed(text):
            self.pieces.put_nowait(piece)

    async def finish(self) -> None:
        """Speak the rest, wait for every block, then ``synthesize-stopped``."""
        if not self.failed:
            for piece in self.splitter.flush():
                self.pieces.put_nowait(piece)
        self.pieces.put_nowait(None)
        await self.task
        await self.session.send(SynthesizeStopped().event())

    async def cancel(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task

    async def _fail(self, text: str, code: str) -> None:
        self.failed = True
        while not self.pieces.empty():  # nothing more of this stream is spoken
            self.pieces.get_nowait()
        await self.session.send(Error(text=text, code=code).event())

    async def _speak(self) -> None:
        send = self.session.send
        if not await wait_ready(self.voice.loaded, self.voice.start_timeout_s, send):
            self.failed = True
        rate = self.voice.tts_rate if not self.failed else 0
        first_piece = True
        while (piece := await self.pieces.get()) is not None:
            if self.failed:
                continue
            # The first piece is what the listener waits for: it is cut at the decoder (its
            # first ~0.37 s sent first, paced: tts.plan). Later ones are made while earlier
            # ones play, whole.
            blocks = (self.voice.synthesize_stream(piece) if first_piece
                      else _whole(self.voice, piece))
            first_piece = False
            first = await anext(blocks, None)
            await send(AudioStart(rate=rate, width=2, channels=1).event())
            if first is not None:
                await send_audio(send, first, rate)
                async for more in blocks:
                    await send_audio(send, more, rate)
            await send(AudioStop().event())


async def _whole(voice: VoiceComponent, text: str) -> AsyncIterator[np.ndarray]:
    yield await voice.synthesize(text)


async def send_audio(send: Send, audio: np.ndarray, rate: int) -> None:
    """int16 mono ``audio`` as audio-chunk events."""
    pcm = audio.astype("<i2", copy=False).tobytes()
    step = SAMPLES_PER_CHUNK * 2
    for offset in range(0, len(pcm), step):
        await send(AudioChunk(rate=rate, width=2, channels=1,
                              audio=pcm[offset:offset + step]).event())


def _voice_facts(path: Path) -> tuple[str, list[str]]:
    """The voice's language code and speaker names, from its .onnx.json (no model load)."""
    try:
        with open(f"{path}.json", "rb") as fh:
            config = json.loads(fh.read(MAX_VOICE_CONFIG_BYTES))
    except (OSError, ValueError):
        return "en_US", []
    if not isinstance(config, dict):
        return "en_US", []
    language = config.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    speakers = config.get("speaker_id_map")
    names = [str(s)[:64] for s in speakers][:MAX_SPEAKERS] \
        if isinstance(speakers, dict) and len(speakers) > 1 else []
    return (str(code)[:16] if code else "en_US"), names
