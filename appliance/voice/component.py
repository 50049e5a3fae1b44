"""The "voice" component: loads Whisper, piper and Silero at start and serves them.

It owns the executors inference runs in, validates what the HTTP API hands
it (bounded audio, bounded text), picks the reply source per turn (the agent
if the node has one, else the LLM router, else none) and, when
``voice.input`` names an ALSA device, runs a conversation on the box's own
microphone and speaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from appliance.config import Config
from appliance.node import Component, Node
from appliance.tasks import cancel_and_wait
from appliance.voice import alsa
from appliance.voice.admission import Admission
from appliance.voice.audio import Audio, float_to_pcm16, is_silent, read_wav, to_pipeline
from appliance.voice.earcon import chime
from appliance.voice.errors import AudioFormatError, AudioTooLong, TextError
from appliance.voice.metrics import VoiceMetrics
from appliance.voice.pipeline import EventSink, Responder, VoiceSession
from appliance.voice.reply import AgentResponder, LlmResponder
from appliance.voice.stt import Transcriber, Transcript
from appliance.voice.tts import Synthesizer
from appliance.voice.vad import Endpointer, SileroModel, SileroVad, VadEvent
from appliance.voice.wake import Detection, WakeDetector, open_detector

log = logging.getLogger(__name__)

#: Loading Whisper and piper from a slow SD card takes a while.
START_TIMEOUT_S = 180.0
#: Two inference threads: a sentence can be synthesised while the next utterance is transcribed.
INFERENCE_THREADS = 2
#: Seconds to wait before reopening a microphone that failed.
MIC_RETRY_S = 5.0
#: Longest timer label spoken.
MAX_LABEL_CHARS = 100
#: Events of the local microphone's conversation kept for /api/status.
LOCAL_EVENTS = 20


class Microphone(Protocol):
    """A source of 30 ms chunks of 16 kHz 16-bit mono PCM (ALSA's arecord, or a test's fake)."""

    def chunks(self) -> AsyncGenerator[bytes, None]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class VoiceSettings:
    """What the voice component needs from the config."""

    stt_model: Path
    tts_voice: Path
    language: str
    stt_threads: int
    stt_min_window_s: float
    trailing_silence_s: float
    max_utterance_s: float
    max_tts_chars: int
    max_stt_bytes: int
    barge_in: bool
    partial_transcripts: bool
    input: str
    output: str
    input_rate: int
    system_prompt: str
    wake_words: tuple[str, ...] = ()
    wake_engine: str = "microwakeword"
    wake_sensitivity: tuple[tuple[str, float], ...] = ()
    follow_up_s: float = 0.0
    earcon: bool = True
    echo_cancelled: bool = False

    @classmethod
    def from_config(cls, cfg: Config) -> VoiceSettings:
        v = cfg.voice
        return cls(stt_model=cfg.stt_model_path, tts_voice=cfg.tts_voice_path,
                   language=v.language, stt_threads=v.stt_thread_count,
                   stt_min_window_s=v.stt_min_window_s,
                   trailing_silence_s=v.trailing_silence_ms / 1000.0,
                   max_utterance_s=v.max_utterance_s, max_tts_chars=v.max_tts_chars,
                   max_stt_bytes=v.max_stt_bytes, barge_in=v.barge_in,
                   partial_transcripts=v.partial_transcripts, input=v.input,
                   output=v.output, input_rate=v.input_rate,
                   system_prompt=cfg.agent.system_prompt, wake_words=tuple(v.wake_words),
                   wake_engine=v.wake_engine,
                   wake_sensitivity=tuple(sorted(v.wake_sensitivity.items())),
                   follow_up_s=v.follow_up_s, earcon=v.earcon,
                   echo_cancelled=v.echo_cancelled)


class VoiceComponent(Component):
    """Speech in and out for the node: the STT/TTS/VAD models and the sessions using them."""

    name = "voice"
    start_timeout_s = START_TIMEOUT_S

    def __init__(self, settings: VoiceSettings, node: Node | None = None, *,
                 microphone: Callable[[], Microphone] | None = None) -> None:
        self.settings = settings
        self.node = node
        # The box's microphone; replaceable because a sound card cannot exist in every test.
        self._microphone = microphone or (lambda: alsa.ArecordSource(settings.input,
                                                                     settings.input_rate))
        self.local_output: alsa.AplayOutput | None = None
        self.local_events: deque[dict[str, Any]] = deque(maxlen=LOCAL_EVENTS)
        """The latest events of the conversation on the box's own microphone."""
        self.stt: Transcriber | None = None
        self.tts: Synthesizer | None = None
        self.vad_model: SileroModel | None = None
        # VAD has its own thread so a 1 s transcription never delays barge-in detection.
        self._vad_pool = ThreadPoolExecutor(1, thread_name_prefix="voice-vad")
        self._pool = ThreadPoolExecutor(INFERENCE_THREADS, thread_name_prefix="voice")
        # Client requests (HTTP, ...) get all threads but one: conversations keep one free.
        self.admission = Admission(INFERENCE_THREADS - 1)
        self._llm_responder: LlmResponder | None = None
        self._mic_task: asyncio.Task[None] | None = None
        self.stats = {"transcriptions": 0, "syntheses": 0, "sessions": 0, "announcements": 0}
        self.metrics_ = VoiceMetrics()
        # Open conversations, for announcements; a session lives as long as its socket/mic.
        self._sessions: weakref.WeakSet[VoiceSession] = weakref.WeakSet()
        self._announcing: set[asyncio.Task[None]] = set()
        self.loaded = asyncio.Event()
        """Set once the models are loaded (servers that answer during loading wait on it)."""

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        vad_model, stt, tts = await asyncio.gather(
            loop.run_in_executor(self._vad_pool, SileroModel),
            loop.run_in_executor(self._pool, lambda: Transcriber(
                s.stt_model, threads=s.stt_threads, language=s.language,
                min_window_s=s.stt_min_window_s)),
            loop.run_in_executor(self._pool, Synthesizer, s.tts_voice))
        await loop.run_in_executor(self._pool, stt.warm_up)
        if s.wake_words:  # a missing or broken engine fails the start, not the first session
            await loop.run_in_executor(self._vad_pool, lambda: self.new_wake_detector().close())
        self.vad_model, self.stt, self.tts = vad_model, stt, tts
        self.loaded.set()
        log.info("voice loaded in %.1fs: whisper %s, piper %s (%d Hz)", time.monotonic() - t0,
                 s.stt_model, s.tts_voice.name, tts.sample_rate)
        timers = getattr(self.node.get("tools"), "timers", None) if self.node else None
        if timers is not None:
            self.listen_timers(timers)
        if alsa.enabled(s.input):
            alsa.check_tools()
            self._mic_task = loop.create_task(self._microphone_loop(), name="voice-mic")

    async def stop(self) -> None:
        for task in list(self._announcing):
            task.cancel()
        await cancel_and_wait([self._mic_task])
        self._mic_task = None
        self.admission.close()  # before the pool goes: clients get 503, not a traceback
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._vad_pool.shutdown(wait=False, cancel_futures=True)

    def healthy(self) -> bool:
        return self._mic_task is None or not self._mic_task.done()

    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"stt_model": str(s.stt_model), "tts_voice": str(s.tts_voice),
                "tts_rate": self.tts.sample_rate if self.tts else None,
                "input": s.input, "output": s.output, "reply_source": self.reply_source(),
                "wake_words": list(s.wake_words), "wake_engine": s.wake_engine,
                **self.stats,
                **({"local": [e for e in self.local_events if e["type"] in
                              ("transcript", "reply", "error")][-3:]}
                   if self._mic_task is not None else {})}

    def status_fragment(self) -> str:
        return "voice" if self.stt is not None else ""

    # ------------------------------------------------------------ engine (for sessions)

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

    def new_wake_detector(self) -> WakeDetector:
        s = self.settings
        return open_detector(s.wake_engine, s.wake_words, dict(s.wake_sensitivity))

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

    def metrics(self) -> Iterable[Any]:
        return self.metrics_.families()

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
        loop = asyncio.get_running_loop()
        samples = await loop.run_in_executor(self._pool, to_pipeline, audio)
        return await self.transcribe(samples)

    def check_text(self, text: Any) -> str:
        if not isinstance(text, str) or not text.strip():
            raise TextError("text is empty: give the words to speak")
        if len(text) > self.settings.max_tts_chars:
            raise TextError(f"text is {len(text)} characters; at most "
                            f"{self.settings.max_tts_chars} are spoken (voice.max_tts_chars)")
        return text.strip()

    async def speak(self, text: Any) -> np.ndarray:
        return await self.synthesize(self.check_text(text))

    # ------------------------------------------------------------ reply source

    def reply_source(self) -> str:
        node = self.node
        if node is not None and node.get("agent") is not None:
            return "agent"
        if node is not None and node.get("llm_router") is not None:
            return "llm"
        return "none"

    def responder(self) -> Responder | None:
        """Resolved per turn, so it does not matter which component started first."""
        node = self.node
        if node is None:
            return None
        agent = node.get("agent")
        if agent is not None:
            return AgentResponder(agent)
        router = node.get("llm_router")
        if router is None:
            return None
        if self._llm_responder is None or self._llm_responder.router is not router:
            self._llm_responder = LlmResponder(router, self.settings.system_prompt)
        return self._llm_responder

    def session(self, emit: EventSink, output: Any, *, conversation_id: str | None = None,
                echo_suppress: bool = False) -> VoiceSession:
        self.stats["sessions"] += 1
        session = VoiceSession(self,
                               conversation_id=conversation_id or f"voice-{uuid.uuid4().hex}",
                               emit=emit, output=output, responder=self.responder,
                               barge_in=self.settings.barge_in,
                               partials=self.settings.partial_transcripts,
                               echo_suppress=echo_suppress)
        self._sessions.add(session)
        return session

    # ------------------------------------------------------------ announcements

    def listen_timers(self, timers: Any) -> None:
        """Speak fired timers (the agent's timers tool) in every open conversation."""
        timers.listen(self._on_timer)

    def announce(self, text: str) -> asyncio.Task[None]:
        """Say ``text`` in every open conversation, or on the box's speaker if none is open."""
        task = asyncio.get_running_loop().create_task(self._announce(text), name="voice-announce")
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)
        return task

    def _on_timer(self, event: dict[str, Any]) -> None:
        label = "".join(ch for ch in str(event.get("label", "timer")) if ch.isprintable())
        self.announce(f"Your {label[:MAX_LABEL_CHARS]} timer is done.")

    async def _announce(self, text: str) -> None:
        self.stats["announcements"] += 1
        sessions = list(self._sessions)
        try:
            if sessions:
                await asyncio.gather(*(session.announce(text) for session in sessions))
            elif alsa.enabled(self.settings.output):
                speaker = alsa.AplayOutput(self.settings.output)
                await speaker.play(float_to_pcm16(await self.synthesize(text)), self.tts_rate)
                await speaker.finish()
        except Exception:  # an announcement must never take the daemon down
            log.exception("announcing %r failed", text)

    # ------------------------------------------------------------ the box's microphone

    async def _microphone_loop(self) -> None:
        s = self.settings
        output = alsa.AplayOutput(s.output) if alsa.enabled(s.output) else None
        self.local_output = output

        async def emit(event: dict[str, Any]) -> None:
            self.local_events.append(event)
            if event["type"] in ("transcript", "reply", "error", "barge_in", "wake"):
                log.info("voice: %s", event)

        session = self.session(emit, output, conversation_id="local-microphone",
                               echo_suppress=not s.echo_cancelled)
        if s.wake_words:
            await session.listen_for_wake(True, follow_up_s=s.follow_up_s,
                                          earcon=chime(self.tts_rate) if s.earcon else None)
        try:
            while True:
                source = self._microphone()
                try:
                    async with contextlib.aclosing(source.chunks()) as chunks:
                        async for chunk in chunks:
                            await session.feed(chunk)
                except alsa.AudioDeviceError as exc:
                    log.error("microphone: %s; retrying in %.0fs", exc, MIC_RETRY_S)
                finally:
                    await source.close()
                await asyncio.sleep(MIC_RETRY_S)
        finally:
            await session.close()
            if output is not None:
                await output.stop()  # no aplay outlives the daemon


