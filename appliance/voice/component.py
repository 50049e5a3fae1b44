"""The "voice" component: speech in and out for the node, over its loaded models.

It loads the models (:mod:`appliance.voice.models`) at start, validates what the
HTTP API hands it (bounded audio, bounded text), opens conversations whose
replies come from its :class:`~appliance.voice.reply.ReplySource`, and starts
the box's own microphone (:mod:`appliance.voice.microphone`) and timer
announcements (:mod:`appliance.voice.announce`) when the config asks for them.
The daemon passes its collaborators in: the reply source and the timers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import numpy as np

from appliance.node import Component
from appliance.voice import alsa
from appliance.voice.admission import Admission
from appliance.voice.announce import Announcer, TimerSource
from appliance.voice.audio import Audio, is_silent, read_wav, to_pipeline
from appliance.voice.errors import AudioFormatError, AudioTooLong, TextError
from appliance.voice.microphone import BoxMicrophone, Microphone
from appliance.voice.models import INFERENCE_THREADS, VoiceModels
from appliance.voice.pipeline import EventSink, VoiceSession
from appliance.voice.reply import ReplySource
from appliance.voice.settings import VoiceSettings
from appliance.voice.stt import Transcript

#: Loading Whisper and piper from a slow SD card takes a while.
START_TIMEOUT_S = 180.0


class VoiceComponent(Component):
    """Speech in and out for the node: its models, conversations and the box's microphone."""

    name = "voice"
    start_timeout_s = START_TIMEOUT_S

    def __init__(self, settings: VoiceSettings, reply: ReplySource | None = None, *,
                 timers: TimerSource | None = None,
                 microphone: Callable[[], Microphone] | None = None) -> None:
        self.settings = settings
        self.models = VoiceModels(settings)
        self.reply = reply or ReplySource()
        self._timers = timers
        # Client requests (HTTP, ...) get all threads but one: conversations keep one free.
        self.admission = Admission(INFERENCE_THREADS - 1)
        self.announcer = Announcer(settings.output, self.models.synthesize,
                                   lambda: self.models.tts_rate, rings=settings.alarm_rings,
                                   ring_gap_s=settings.alarm_ring_gap_s)
        self.microphone = BoxMicrophone(settings, self.session, lambda: self.models.tts_rate,
                                        microphone)
        self.sessions = 0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.models.load()
        if self._timers is not None:
            self.announcer.listen_timers(self._timers)
        if alsa.enabled(self.settings.input):
            self.microphone.start()

    async def stop(self) -> None:
        self.announcer.stop()
        await self.microphone.stop()
        self.admission.close()  # before the threads go: clients get 503, not a traceback
        self.models.close()

    def healthy(self) -> bool:
        return self.microphone.healthy()

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"stt_model": str(s.stt_model), "tts_voice": str(s.tts_voice),
                "tts_rate": self.tts.sample_rate if self.tts else None,
                "input": s.input, "output": s.output, "reply_source": self.reply.kind,
                "wake_words": list(s.wake_words), "wake_engine": s.wake_engine,
                "queue": self.admission.describe(), **self.stats,
                **({"local": self.microphone.recent()} if self.microphone.running else {})}

    def status_fragment(self) -> str:
        return "voice" if self.stt is not None else ""

    def metrics(self) -> Iterable[Any]:
        return self.models.metrics()

    @property
    def stats(self) -> dict[str, int]:
        return {**self.models.stats, "sessions": self.sessions,
                "announcements": self.announcer.count, "alarms_ringing": self.announcer.ringing}

    # ------------------------------------------------------------ the models (for servers)

    @property
    def loaded(self) -> asyncio.Event:
        """Set once the models are loaded (servers that answer during loading wait on it)."""
        return self.models.loaded

    @property
    def stt(self) -> Any:
        return self.models.stt

    @property
    def tts(self) -> Any:
        return self.models.tts

    @property
    def tts_rate(self) -> int:
        return self.models.tts_rate

    async def transcribe(self, samples: np.ndarray, **options: Any) -> Transcript:
        """``options``: those of :meth:`Transcriber.transcribe` (language, prompt, ...)."""
        return await self.models.transcribe(samples, **options)

    async def synthesize(self, text: str, speed: float = 1.0) -> np.ndarray:
        """int16 mono at :attr:`tts_rate`."""
        return await self.models.synthesize(text, speed)

    def synthesize_stream(self, text: str, speed: float = 1.0) -> AsyncIterator[np.ndarray]:
        """int16 mono at :attr:`tts_rate`, piece by piece as it is made (a first sentence
        in pieces: :meth:`Models.synthesize_stream`)."""
        return self.models.synthesize_stream(text, speed)

    # ------------------------------------------------------------ validated entry points

    def check_audio(self, data: bytes) -> Audio:
        """A WAV body as audio, or AudioFormatError/TextError saying what is wrong."""
        if not data:
            raise AudioFormatError("empty body: send a WAV file")
        if len(data) > self.settings.max_stt_bytes:
            raise AudioTooLong(f"WAV is {len(data)} bytes; at most "
                               f"{self.settings.max_stt_bytes} are accepted")
        audio = read_wav(data)
        if len(audio.samples) == 0:
            raise AudioFormatError("the WAV holds no audio samples")
        if audio.duration_s > self.settings.max_utterance_s:
            raise AudioTooLong(f"audio is {audio.duration_s:.1f} s long; at most "
                               f"{self.settings.max_utterance_s:.0f} s are accepted "
                               "(voice.max_utterance_s)")
        if is_silent(audio.samples):
            raise AudioFormatError("the audio is silent: nothing to transcribe")
        return audio

    async def transcribe_wav(self, data: bytes) -> Transcript:
        audio = self.check_audio(data)
        return await self.transcribe(await self.models.run(to_pipeline, audio))

    def check_text(self, text: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            raise TextError("text is empty: give the words to speak")
        if len(text) > self.settings.max_tts_chars:
            raise TextError(f"text is {len(text)} characters; at most "
                            f"{self.settings.max_tts_chars} are spoken (voice.max_tts_chars)")
        return text.strip()

    async def speak(self, text: Any) -> np.ndarray:
        return await self.synthesize(self.check_text(text))

    # ------------------------------------------------------------ conversations

    def session(self, emit: EventSink, output: Any, *, conversation_id: str | None = None,
                echo_suppress: bool = False) -> VoiceSession:
        """A new conversation over the models; announcements are said in it too."""
        self.sessions += 1

        async def heard(event: dict[str, Any]) -> None:
            if event.get("type") == "speech_start":  # someone is up: a ringing alarm stops
                self.announcer.dismiss()
            await emit(event)

        session = VoiceSession(self.models,
                               conversation_id=conversation_id or f"voice-{uuid.uuid4().hex}",
                               emit=heard, output=output, responder=self.reply.responder,
                               barge_in=self.settings.barge_in,
                               partials=self.settings.partial_transcripts,
                               echo_suppress=echo_suppress)
        self.announcer.track(session)
        return session
