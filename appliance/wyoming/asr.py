"""Speech to text over Wyoming: ``transcribe``, ``audio-start``/``-chunk``/``-stop`` ->
``transcript``.

Audio may come at any rate, sample width and channel count (announced in
``audio-start`` or, without one, by the first chunk); it is kept as it came,
bounded by ``voice.max_utterance_s``, and converted to 16 kHz mono once at
``audio-stop``. The answer streams: ``transcript-start``, a
``transcript-chunk`` per piece of text as Whisper decodes it (one for a short
utterance; one per 30 s window for a long one), ``transcript``, then
``transcript-stop``; clients that know only ``transcript`` (Home Assistant
before streaming) read that and ignore the rest.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution

from appliance import __version__
from appliance.voice.audio import MAX_CHANNELS, MAX_RATE, MIN_RATE, is_silent, pcm_to_mono
from appliance.voice.audio import resample as resample_to
from appliance.voice.component import VoiceComponent
from appliance.wyoming.access import Level
from appliance.wyoming.server import Send, wait_ready

log = logging.getLogger(__name__)

#: Languages when the model cannot say (an English-only Whisper).
ENGLISH = ["en"]
#: Largest model config.json read to learn the languages before the model is loaded.
MAX_MODEL_CONFIG_BYTES = 1024 * 1024
MAX_LANGUAGE_CHARS = 16
WHISPER = Attribution(name="OpenAI Whisper, run by faster-whisper (SYSTRAN)",
                      url="https://github.com/SYSTRAN/faster-whisper")


@dataclass(frozen=True)
class AudioFormat:
    """How the peer's PCM is laid out."""

    rate: int
    width: int
    channels: int

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> AudioFormat:
        """From an audio event's data; ValueError saying what is wrong."""
        values = {key: data.get(key) for key in ("rate", "width", "channels")}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"audio {key} must be an integer, got {str(value)[:16]!r}")
        fmt = cls(**values)  # type: ignore[arg-type]
        if not MIN_RATE <= fmt.rate <= MAX_RATE:
            raise ValueError(f"audio rate {fmt.rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
        if fmt.width not in (1, 2, 3, 4):
            raise ValueError(f"audio width {fmt.width} bytes is not 1, 2, 3 or 4")
        if not 1 <= fmt.channels <= MAX_CHANNELS:
            raise ValueError(f"audio has {fmt.channels} channels; 1 to {MAX_CHANNELS} "
                             "are supported")
        return fmt

    def check_chunk(self, data: dict[str, Any]) -> None:
        """An ``audio-chunk`` of a stream in this format; ValueError if its own is bad or
        another."""
        fmt = AudioFormat.from_data(data)
        if fmt != self:
            raise ValueError(f"audio-chunk format {fmt} differs from audio-start's {self}")

    @property
    def bytes_per_s(self) -> int:
        return self.rate * self.width * self.channels


class AsrService:
    """The box's Whisper as a Wyoming ``asr`` program."""

    kind = "asr"
    level = Level.SPEECH

    def __init__(self, voice: VoiceComponent) -> None:
        self.voice = voice
        self.model_name = voice.settings.stt_model.name or "whisper"
        self._languages = _model_languages(voice.settings.stt_model)

    @property
    def languages(self) -> list[str]:
        stt = self.voice.stt
        return stt.languages if stt is not None else self._languages

    def program(self) -> AsrProgram:
        model = AsrModel(name=self.model_name, attribution=WHISPER, installed=True,
                         description=f"Whisper ({self.model_name}) with a fitted encoder window",
                         version=None, languages=self.languages)
        return AsrProgram(name="hybrid-agent-stt", attribution=WHISPER, installed=True,
                          description="hybrid-agent speech to text (faster-whisper)",
                          version=__version__, models=[model],
                          supports_transcript_streaming=True)

    def open(self, send: Send) -> AsrSession:
        return AsrSession(self, send)

    def language(self, requested: Any) -> str | None:
        """A request's language as a Whisper code, None for the configured one;
        ValueError naming an unknown one."""
        if requested is None or requested == "":
            return None
        if not isinstance(requested, str) or len(requested) > MAX_LANGUAGE_CHARS:
            raise ValueError("language must be a short language code like en or en-US")
        code = requested.replace("_", "-").split("-")[0].lower()
        if code not in self.languages:
            raise ValueError(f"language {requested!r} is not one {self.model_name} knows")
        return code


class AsrSession:
    """One connection's transcription requests."""

    types = frozenset({"transcribe", "audio-start", "audio-chunk", "audio-stop"})
    opens = frozenset({"transcribe"})

    def __init__(self, service: AsrService, send: Send) -> None:
        self.service = service
        self.voice = service.voice
        self.send = send
        self.language: str | None = None
        self.format: AudioFormat | None = None
        self.audio = bytearray()
        self.failed = False

    async def on_event(self, event: Event) -> None:
        kind = event.type
        if kind == "transcribe":
            self._reset()
            try:
                self.language = self.service.language(event.data.get("language"))
            except ValueError as exc:
                await self._fail(str(exc), "bad-language")
        elif kind == "audio-start":
            self._restart_audio()
            await self._set_format(event.data)
        elif kind == "audio-chunk":
            await self._chunk(event)
        elif kind == "audio-stop":
            await self._stop()

    async def close(self) -> None:
        self._reset()

    # ------------------------------------------------------------ internals

    def _reset(self) -> None:
        self.language = None
        self._restart_audio()

    def _restart_audio(self) -> None:
        self.format = None
        self.audio = bytearray()
        self.failed = False

    async def _set_format(self, data: dict[str, Any]) -> bool:
        try:
            self.format = AudioFormat.from_data(data)
        except ValueError as exc:
            await self._fail(str(exc), "bad-audio-format")
            return False
        return True

    async def _chunk(self, event: Event) -> None:
        if self.failed:
            return  # already answered with an error; wait for the next request
        if self.format is None:
            if not await self._set_format(event.data):
                return
        else:
            try:
                self.format.check_chunk(event.data)
            except ValueError as exc:
                await self._fail(str(exc), "bad-audio-format")
                return
        assert self.format is not None
        payload = event.payload or b""
        limit_s = self.voice.settings.max_utterance_s
        if len(self.audio) + len(payload) > limit_s * self.format.bytes_per_s:
            await self._fail(f"audio is longer than {limit_s:.0f} s (voice.max_utterance_s)",
                             "audio-too-long")
            return
        self.audio += payload

    async def _stop(self) -> None:
        if self.failed:
            self._restart_audio()
            return
        fmt, audio, language = self.format, bytes(self.audio), self.language
        self._reset()
        if fmt is None or not audio:
            await self.send(Transcript(text="").event())  # nothing said, nothing heard
            return
        if not await wait_ready(self.voice.loaded, self.voice.start_timeout_s, self.send):
            return
        samples = await asyncio.to_thread(_to_pipeline, audio, fmt)
        if len(samples) == 0 or is_silent(samples):
            await self.send(Transcript(text="", language=language).event())
            return
        await self._transcribe(samples, language)

    async def _transcribe(self, samples: np.ndarray, language: str | None) -> None:
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str] = asyncio.Queue()

        def on_text(text: str) -> None:  # in the inference thread
            loop.call_soon_threadsafe(pieces.put_nowait, text)

        await self.send(TranscriptStart(language=language).event())
        job = asyncio.ensure_future(self.voice.transcribe(samples, language=language,
                                                          on_text=on_text))
        try:
            while not job.done() or not pieces.empty():
                getter = asyncio.ensure_future(pieces.get())
                await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    await self.send(TranscriptChunk(text=getter.result()).event())
                else:
                    getter.cancel()
            transcript = job.result()
        finally:
            job.cancel()
        await self.send(Transcript(text=transcript.text, language=transcript.language).event())
        await self.send(TranscriptStop().event())

    async def _fail(self, text: str, code: str) -> None:
        self.failed = True
        self.audio = bytearray()
        await self.send(Error(text=text, code=code).event())


def _to_pipeline(audio: bytes, fmt: AudioFormat) -> np.ndarray:
    return resample_to(pcm_to_mono(audio, fmt.width, fmt.channels), fmt.rate)


def _model_languages(model_dir: Path) -> list[str]:
    """What the model will know once loaded, from its config.json (no model load)."""
    try:
        with open(model_dir / "config.json", "rb") as fh:
            config = json.loads(fh.read(MAX_MODEL_CONFIG_BYTES))
    except (OSError, ValueError):
        return ENGLISH
    if not isinstance(config, dict) or not config.get("lang_ids"):
        return ENGLISH
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return list(_LANGUAGE_CODES)
