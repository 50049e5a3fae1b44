"""One spoken conversation: audio in -> VAD -> STT -> responder -> sentences -> TTS -> audio out.

A :class:`VoiceSession` is fed 16 kHz 16-bit mono PCM (from the browser's
WebSocket or an ALSA microphone) and reports what happens through an
:data:`EventSink` (JSON-able dicts) and an :class:`AudioOutput` (the reply's
PCM). The reply text comes from a :data:`Responder`; it is cut into sentences
as it streams and each sentence is synthesised and played as soon as it is
ready. Speech heard while the assistant is thinking or talking is a barge-in:
playback and pending synthesis stop, and the conversation records the reply
as cut off where the listener stopped hearing it.

Hands-free (:meth:`VoiceSession.listen_for_wake`): the session waits for a wake word and
hears nothing else (``state {state: "waiting"}``); the wake word opens it (``wake {word,
phrase, score, t}``, an earcon on the output if asked, then ``state listening``) for one
question; a reply opens it again for ``follow_up_s`` without the wake word (not one that
ended the conversation, "Goodbye!"); when a window passes in silence it waits again. The
wake word while a turn runs or audio plays is a barge-in that starts a new turn. With
``echo_suppress`` (a microphone that hears the speaker) the VAD is deaf while our own audio
plays and for ECHO_TAIL_S after it, so a reply or an announcement is never taken for the
user's speech; the wake word is still heard.

Events, in the order a turn produces them (``type`` plus fields):
``speech_start {t}``, ``transcript {text, language, final: false}`` (partials, if on),
``speech_end {t, duration_s}``, ``transcript {text, language, final: true}``,
``reply_text {text}`` (a delta), ``audio {sample_rate, samples, text}`` (followed by the PCM),
``reply {text, spoken, cut_off}``, ``done``;
``barge_in {spoken}``, ``state {state}``, ``error {message, code}`` at any time, and
``announcement {text}`` (followed by ``audio``) when something is said unprompted.
``reply`` carries ``timings`` in seconds: endpointing_s, stt_s, llm_first_token_s,
first_sentence_s, tts_first_s and first_audio_s (real end of speech -> first reply audio).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from appliance.tasks import cancel_and_wait
from appliance.voice.audio import PIPELINE_RATE, float_to_pcm16, pcm16_to_float
from appliance.voice.sentences import SentenceSplitter
from appliance.voice.stt import Transcript
from appliance.voice.vad import EARLY_END_S, WINDOW_S, Endpointer, VadEvent
from appliance.voice.wake import Detection, WakeDetector, strip_wake_phrase

log = logging.getLogger(__name__)

Responder = Callable[[str, str], AsyncIterator[str]]
"""``(user_text, conversation_id) -> text deltas`` of the reply. It may also have ``record(cid,
turn)``, called when a turn ends or is cut off, and ``ends(cid)``: the reply ended it."""
EventSink = Callable[[dict[str, Any]], Awaitable[None]]

#: Sentences waiting for synthesis; the LLM is far faster than speech, so a few suffice.
SENTENCE_QUEUE = 32
#: How long a finished turn's tasks may take to wind down after cancellation.
CANCEL_GRACE_S = 2.0
CUT_OFF_MARK = "…"
#: With partial transcripts on, the utterance so far is transcribed this often.
PARTIAL_INTERVAL_S = 1.0
#: After the wake word, how long the session waits for the question to start.
WAKE_LISTEN_S = 8.0
#: After our own audio ends, how long the room may still echo it (speaker latency, reverb).
ECHO_TAIL_S = 0.3


class AudioOutput(Protocol):
    """Where the reply's audio goes (a speaker, the browser)."""

    async def play(self, pcm: bytes, sample_rate: int, text: str) -> None:
        """Queue 16-bit mono PCM for playback; returns once it is accepted."""
        ...

    async def stop(self) -> None:
        """Stop playback now and drop whatever is queued."""
        ...


class VoiceEngine(Protocol):
    """What a session needs from the voice component."""

    @property
    def tts_rate(self) -> int: ...

    def new_endpointer(self) -> Endpointer: ...

    async def vad(self, endpointer: Endpointer, samples: np.ndarray) -> list[VadEvent]: ...

    async def transcribe(self, samples: np.ndarray, **options: Any) -> Any: ...

    async def synthesize(self, text: str) -> np.ndarray: ...

    async def new_wake_detector(self) -> WakeDetector: ...

    async def close_wake(self, detector: WakeDetector) -> None: ...

    async def wake(self, detector: WakeDetector, pcm: bytes) -> list[Detection]: ...


@dataclass
class Turn:
    """One exchange as the conversation records it."""

    user: str
    reply: str = ""
    """Everything the responder produced."""
    spoken: str = ""
    """What the listener heard: all of ``reply`` unless cut off."""
    cut_off: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    responder: Any = None
    """The responder that answered; told via its optional ``record(cid, turn)`` what was heard."""
    ends: bool = False  # the reply ended the conversation (the responder's ``ends(cid)``)


@dataclass
class _Played:
    text: str
    start: float
    end: float


class PlaybackClock:
    """Where playback is, estimated from what was handed to the output and when."""

    def __init__(self) -> None:
        self.items: list[_Played] = []
        self.end = 0.0

    def add(self, text: str, duration_s: float, now: float) -> None:
        start = max(self.end, now)
        self.end = start + duration_s
        self.items.append(_Played(text, start, self.end))

    def playing(self, now: float) -> bool:
        return now < self.end

    def spoken_at(self, now: float) -> tuple[str, bool]:
        """The text heard by ``now`` and whether that is less than was queued."""
        heard: list[str] = []
        cut = False
        for item in self.items:
            if item.end <= now:
                heard.append(item.text)
                continue
            cut = True
            if item.start < now:
                words = item.text.split()
                frac = (now - item.start) / (item.end - item.start)
                part = " ".join(words[: int(len(words) * frac)])
                if part:
                    heard.append(part)
            break
        return " ".join(heard), cut

    def stop(self, now: float) -> None:
        self.end = min(self.end, now)


class VoiceSession:
    """A conversation over one audio stream; feed it PCM, await ``close`` at the end."""

    def __init__(self, engine: VoiceEngine, *, conversation_id: str, emit: EventSink,
                 output: AudioOutput | None, responder: Callable[[], Responder | None],
                 barge_in: bool = True, partials: bool = False,
                 record: Callable[[Turn], None] | None = None,
                 echo_suppress: bool = False) -> None:
        self.engine = engine
        self.conversation_id = conversation_id
        self._emit = emit
        self._output = output
        self._responder = responder
        self._barge_in_enabled = barge_in
        self._partials = partials
        self._partial_task: asyncio.Task[None] | None = None
        self._partial_at = 0.0
        self._utterance = 0
        self._released_at = 0  # self._utterance when push-to-talk was last released
        self._record = record
        self._endpointer = engine.new_endpointer()
        self._turn_task: asyncio.Task[None] | None = None
        # The reply's TTS task (a child of the turn's): stopped together with the turn, before
        # any await, so no sentence synthesised meanwhile reaches the output after a stop.
        self._speaker_task: asyncio.Task[None] | None = None
        self._turn: Turn | None = None
        self._clock = PlaybackClock()
        self.turns: list[Turn] = []
        self.stream_s = 0.0
        """Seconds of audio fed so far (the session's own clock for VAD times)."""
        self._stream_origin: float | None = None
        self._speech_end_at = 0.0
        self._speculation: tuple[float, asyncio.Task[Any]] | None = None
        self._complete_at: float | None = None
        """End of speech of a pause whose transcript is a whole request: end the turn there."""
        self.barge_ins: list[dict[str, float]] = []
        self._echo_suppress = echo_suppress
        # Hands-free state: the detector, and until when (stream time) the VAD is open.
        self._wake: WakeDetector | None = None
        self._wake_turns = 0  # calls of listen_for_wake and close, so a late detector is dropped
        self._follow_up_s = 0.0
        self._earcon: np.ndarray | None = None
        self._open_until: float | None = None
        self._woken_by: Detection | None = None
        self._ended: Turn | None = None
        # The endpointer is replaced after the VAD was deaf; its times count from here.
        self._ep_origin = 0.0
        self._ep_stale = False
        self._echo_cut = 0.0

    # ------------------------------------------------------------ input

    async def listen_for_wake(self, on: bool, *, follow_up_s: float = 0.0,
                              earcon: np.ndarray | None = None,
                              echo_suppress: bool | None = None) -> None:
        """Hands-free on (wait for the wake word; ``earcon``: int16 at the TTS rate, played
        on the output when it is heard) or off (every utterance is a turn, as before)."""
        if echo_suppress is not None:
            self._echo_suppress = echo_suppress
        self._wake_turns += 1  # a detector still being built for an earlier call is stale
        turn = self._wake_turns
        if not on:
            detector, self._wake = self._wake, None
            self._open_until = None
            if detector is not None:
                await self.engine.close_wake(detector)
            return
        if self._wake is None:
            detector = await self.engine.new_wake_detector()
            if turn != self._wake_turns or self._wake is not None:
                await self.engine.close_wake(detector)  # switched, or closed, meanwhile
                return
            self._wake = detector
        self._follow_up_s = follow_up_s
        self._earcon = earcon
        self._open_until = None
        self._ep_stale = True
        await self._emit({"type": "state", "state": "waiting",
                          "wake_words": list(self._wake.words)})

    @property
    def hands_free(self) -> bool:
        return self._wake is not None

    async def feed(self, pcm: bytes) -> None:
        """16-bit mono 16 kHz PCM from the microphone, any chunk size."""
        if self._stream_origin is None:
            self._stream_origin = time.monotonic()
        samples = pcm16_to_float(pcm)
        chunk_start = self.stream_s
        self.stream_s += len(samples) / PIPELINE_RATE
        if self._wake is not None:
            for detection in await self.engine.wake(self._wake, pcm):
                await self._on_wake(detection)
        await self._after_turn()
        if not await self._hearing():
            self._ep_stale = True
            return
        if self._ep_stale:
            self._endpointer = self.engine.new_endpointer()
            self._ep_origin = chunk_start
            self._ep_stale = False
        for ev in await self.engine.vad(self._endpointer, samples):
            await self._on_vad(self._shift(ev))
        if self._complete_at is not None:
            # Ended here, between VAD runs, so the endpointer is never used by two at once;
            # not before EARLY_END_S of silence (the transcript may be ready sooner), and not
            # at all when speech went on since. _complete_at is stream time; the endpointer
            # counts from _ep_origin.
            speech_end = self._complete_at - self._ep_origin
            silent = self._endpointer.silence_after(speech_end)
            if silent is None:
                self._complete_at = None
            elif silent >= EARLY_END_S - WINDOW_S / 2:
                self._complete_at = None
                early = self._endpointer.end_now(speech_end)
                if early is not None:
                    await self._on_vad(self._shift(early))
        if self._partials and self._endpointer.in_speech \
                and self.stream_s - self._partial_at >= PARTIAL_INTERVAL_S \
                and (self._partial_task is None or self._partial_task.done()):
            self._partial_at = self.stream_s
            self._partial_task = asyncio.get_running_loop().create_task(
                self._partial(self._utterance, self._endpointer.utterance_so_far()),
                name="voice-stt-partial")

    async def _speculate(self, ev: VadEvent) -> Any:
        """The pause's transcript; when the responder says it is already a whole request
        (an everyday intent), the utterance ends at this pause (see ``feed``)."""
        transcript = await self.engine.transcribe(ev.audio)
        check = getattr(self._responder(), "complete", None)
        if transcript.text and check is not None and await check(transcript.text):
            self._complete_at = ev.end_s
        return transcript

    async def end_utterance(self) -> None:
        """The user says they finished (push-to-talk released): end the utterance now."""
        ev = self._endpointer.flush()
        heard = self._utterance != self._released_at  # an utterance ended since the last one
        self._released_at = self._utterance
        if ev is not None:
            await self._on_vad(self._shift(ev))
            self._released_at = self._utterance
        elif not self.busy and not heard:
            # Nothing was heard: say so, so a push-to-talk client does not wait forever.
            # (When the utterance already ended on its own, at a pause that was a whole
            # request, its turn has answered: an empty transcript now would replace it.)
            await self._emit({"type": "transcript", "text": "", "language": "", "final": True})
            await self._emit({"type": "done"})

    async def announce(self, text: str) -> None:
        """Say ``text`` unprompted (a timer fired); it can be barged into like a reply."""
        pcm16 = await self.engine.synthesize(text)
        await self._emit({"type": "announcement", "text": text})
        if len(pcm16) == 0:
            return
        rate = self.engine.tts_rate
        self._clock.add(text, len(pcm16) / rate, time.monotonic())
        await self._emit({"type": "audio", "sample_rate": rate, "samples": len(pcm16),
                          "text": text})
        if self._output is not None:
            await self._output.play(float_to_pcm16(pcm16), rate, text)

    async def wait_idle(self) -> None:
        """Until the current turn (reply and its synthesis) is finished."""
        task = self._turn_task
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def close(self) -> None:
        self._drop_speculation()
        if self._partial_task is not None:
            self._partial_task.cancel()
        await self._cancel_turn(reason=None)
        self._wake_turns += 1
        detector, self._wake = self._wake, None
        if detector is not None:
            await self.engine.close_wake(detector)

    @property
    def speaking(self) -> bool:
        return self._clock.playing(time.monotonic())

    @property
    def busy(self) -> bool:
        return self._turn_task is not None and not self._turn_task.done()

    # ------------------------------------------------------------ turn

    async def _on_vad(self, ev: VadEvent) -> None:
        if ev.kind == "pause":
            # Transcribe now; if this silence becomes the end, the result is already there.
            self._drop_speculation()
            self._speculation = (ev.end_s, asyncio.get_running_loop().create_task(
                self._speculate(ev), name="voice-stt-speculative"))
            return
        self._complete_at = None
        if ev.kind == "start":
            self._partial_at = self.stream_s
            await self._emit({"type": "speech_start", "t": round(ev.start_s, 3)})
            if self._barge_in_enabled and (self.busy or self.speaking):
                await self._barge_in(ev.start_s)
            return
        self._utterance += 1  # a partial still running for this utterance is now stale
        await self._emit({"type": "speech_end", "t": round(ev.end_s, 3),
                          "duration_s": round(ev.end_s - ev.start_s, 3),
                          "truncated": ev.truncated})
        await self._cancel_turn(reason=None)
        turn = Turn(user="")
        self._speech_end_at = time.monotonic()
        # How long after the real end of speech the endpointer decided, in stream time.
        turn.timings["endpointing_s"] = max(0.0, ev.detected_s - ev.end_s)
        self._turn = turn
        speculation, self._speculation = self._speculation, None
        early = speculation[1] if speculation is not None and speculation[0] == ev.end_s \
            else None
        if early is None and speculation is not None:
            speculation[1].cancel()
        self._turn_task = asyncio.get_running_loop().create_task(
            self._run_turn_then_listen(turn, ev.audio, early), name="voice-turn")

    async def _run_turn(self, turn: Turn, audio: np.ndarray,
                        early: asyncio.Task[Any] | None = None) -> None:
        try:
            await self._emit({"type": "state", "state": "transcribing"})
            t0 = time.monotonic()
            transcript = await (early if early is not None else self.engine.transcribe(audio))
            turn.timings["stt_s"] = time.monotonic() - t0
            woken, self._woken_by = self._woken_by, None
            turn.user = await self._heard(transcript, woken.phrase if woken else None)
            await self._emit({"type": "transcript", "text": turn.user,
                              "language": transcript.language, "final": True})
            if not transcript.text:
                await self._emit({"type": "state", "state": "listening"})
                return
            responder = self._responder()
            if responder is None:
                await self._emit({"type": "error", "code": "no_llm_available",
                                  "message": "no LLM available: this node has neither an agent "
                                             "nor an LLM (set llm.mode or add a core)"})
                await self._emit({"type": "done"})
                return
            turn.responder = responder
            await self._emit({"type": "state", "state": "thinking"})
            await self._reply(turn, responder)
            await self._finish(turn, cut_off=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            code = getattr(exc, "code", None)
            if code is None:
                log.exception("voice turn failed")
            await self._emit({"type": "error", "code": code or "voice_error",
                              "message": str(exc) if code else f"{type(exc).__name__}: {exc}"})
            await self._emit({"type": "done"})

    async def _heard(self, transcript: Transcript, wake_phrase: str | None) -> str:
        """The reading of the utterance to answer: the best, unless the responder understands
        only another of Whisper's readings (an everyday intent), without the wake phrase."""
        readings = [transcript.text, *transcript.alternatives]
        if wake_phrase is not None:
            readings = [strip_wake_phrase(text, wake_phrase) if text else text
                        for text in readings]
        choose = getattr(self._responder(), "choose", None)
        if transcript.text and len(readings) > 1 and choose is not None:
            return str(await choose(readings))
        return readings[0]

    async def _run_turn_then_listen(self, turn: Turn, audio: np.ndarray,
                                    early: asyncio.Task[Any] | None) -> None:
        try:
            await self._run_turn(turn, audio, early)
        finally:
            self._ended = turn

    async def _reply(self, turn: Turn, responder: Responder) -> None:
        sentences: asyncio.Queue[str | None] = asyncio.Queue(SENTENCE_QUEUE)
        speaker = asyncio.get_running_loop().create_task(self._speak(turn, sentences),
                                                         name="voice-tts")
        self._speaker_task = speaker
        stream = responder(turn.user, self.conversation_id)
        try:
            splitter = SentenceSplitter()
            t0 = time.monotonic()
            async for delta in stream:
                if not delta:
                    continue
                if "llm_first_token_s" not in turn.timings:
                    turn.timings["llm_first_token_s"] = time.monotonic() - t0
                turn.reply += delta
                await self._emit({"type": "reply_text", "text": delta})
                for s in splitter.feed(delta):
                    if "first_sentence_s" not in turn.timings:
                        turn.timings["first_sentence_s"] = time.monotonic() - t0
                    await sentences.put(s)
            for s in splitter.flush():
                await sentences.put(s)
            await sentences.put(None)
            await speaker
        finally:
            speaker.cancel()  # done already unless the turn was cut short
            if self._speaker_task is speaker:
                self._speaker_task = None
            # Close the reply stream now (not at garbage collection), so a cut-off answer
            # stops generating and frees its LLM slot at once.
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
            await cancel_and_wait([speaker])

    async def _speak(self, turn: Turn, sentences: asyncio.Queue[str | None]) -> None:
        rate = self.engine.tts_rate
        while (sentence := await sentences.get()) is not None:
            t0 = time.monotonic()
            pcm16 = await self.engine.synthesize(sentence)
            if "tts_first_s" not in turn.timings:
                turn.timings["tts_first_s"] = time.monotonic() - t0
            if len(pcm16) == 0:
                continue
            now = time.monotonic()
            if "first_audio_s" not in turn.timings:
                # From the real end of speech: the trailing silence plus everything since.
                turn.timings["first_audio_s"] = (turn.timings["endpointing_s"]
                                                 + now - self._speech_end_at)
            self._clock.add(sentence, len(pcm16) / rate, now)
            await self._emit({"type": "audio", "sample_rate": rate, "samples": len(pcm16),
                              "text": sentence})
            if self._output is not None:
                await self._output.play(float_to_pcm16(pcm16), rate, sentence)

    async def _finish(self, turn: Turn, *, cut_off: bool) -> None:
        if cut_off:
            spoken, _ = self._clock.spoken_at(time.monotonic())
            turn.spoken = f"{spoken}{CUT_OFF_MARK}" if spoken else CUT_OFF_MARK
        else:
            turn.spoken = turn.reply.strip()
            turn.ends = bool(getattr(turn.responder, "ends", lambda _: 0)(self.conversation_id))
        turn.cut_off = cut_off
        self.turns.append(turn)
        self._record_turn(turn)
        await self._emit({"type": "reply", "text": turn.reply, "spoken": turn.spoken,
                          "cut_off": cut_off,
                          "timings": {k: round(v, 4) for k, v in turn.timings.items()}})
        await self._emit({"type": "done"})

    async def _barge_in(self, heard_s: float) -> None:
        """Stop the reply and what plays; ``heard_s``: stream time the interruption began."""
        now = time.monotonic()
        # Cancel before the first await: otherwise a sentence whose synthesis just finished
        # could still reach the speaker after it was stopped.
        task, self._turn_task = self._turn_task, None
        if task is not None and not task.done():
            task.cancel()
        self._stop_speaking()
        heard_at = self._stream_time_to_monotonic(heard_s)
        turn = self._turn
        spoken, _ = self._clock.spoken_at(now)
        self._clock.stop(now)
        self._echo_cut = now  # the speaker was stopped, not played out: no echo tail follows
        if self._output is not None:
            await self._output.stop()
        self.barge_ins.append({"speech_start": heard_at, "stopped": time.monotonic()})
        await self._emit({"type": "barge_in", "spoken": spoken})
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, CANCEL_GRACE_S)
        if turn is not None and turn.user and turn not in self.turns:
            turn.spoken = f"{spoken}{CUT_OFF_MARK}" if spoken else CUT_OFF_MARK
            turn.cut_off = True
            self.turns.append(turn)
            self._record_turn(turn)
            await self._emit({"type": "reply", "text": turn.reply, "spoken": turn.spoken,
                              "cut_off": True})
        elif turn is not None and turn in self.turns and spoken != turn.spoken:
            # The reply was complete but still playing: cut off all the same (and ends nothing).
            turn.spoken = f"{spoken}{CUT_OFF_MARK}"
            turn.cut_off, turn.ends = True, False
            self._record_turn(turn)
            await self._emit({"type": "reply", "text": turn.reply, "spoken": turn.spoken,
                              "cut_off": True})
        self._turn = None

    def _stop_speaking(self) -> None:
        speaker, self._speaker_task = self._speaker_task, None
        if speaker is not None:
            speaker.cancel()

    async def _cancel_turn(self, reason: str | None) -> None:
        task, self._turn_task = self._turn_task, None
        if task is not None and not task.done():
            task.cancel()
            self._stop_speaking()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, CANCEL_GRACE_S)

    async def _partial(self, utterance: int, audio: np.ndarray) -> None:
        transcript = await self.engine.transcribe(audio, recheck=False)
        if utterance == self._utterance and transcript.text:
            await self._emit({"type": "transcript", "text": transcript.text,
                              "language": transcript.language, "final": False})

    # ------------------------------------------------------------ hands-free

    async def _on_wake(self, detection: Detection) -> None:
        """The wake word: stop whatever runs or plays, then open for one question."""
        await self._emit({"type": "wake", "word": detection.word, "phrase": detection.phrase,
                          "score": detection.score, "t": round(detection.end_s, 3)})
        if self.busy or self.speaking:
            await self._barge_in(detection.end_s)
        self._drop_speculation()
        self._ended = None
        self._woken_by = detection
        self._open_until = self.stream_s + WAKE_LISTEN_S
        self._ep_stale = True  # the question is heard from the next chunk on, by a fresh VAD
        if self._earcon is not None and self._output is not None and len(self._earcon):
            await self._output.play(float_to_pcm16(self._earcon), self.engine.tts_rate, "")
        await self._emit({"type": "state", "state": "listening"})

    async def _after_turn(self) -> None:
        """Once a turn is over and its audio has played: a follow-up window, or wait."""
        turn = self._ended
        if turn is None or self.busy or self._echo_playing() or self._in_speech():
            return  # an utterance under way (one that barged in) is heard to its end
        self._ended = None
        if self._wake is None:
            return
        if turn.spoken and self._follow_up_s > 0 and not turn.ends:
            self._open_until = self.stream_s + self._follow_up_s
            await self._emit({"type": "state", "state": "listening",
                              "follow_up_s": self._follow_up_s})
        else:
            self._open_until = self.stream_s
            self._ep_stale = True

    async def _hearing(self) -> bool:
        """Whether the VAD hears this chunk."""
        if self._echo_suppress and self._echo_playing():
            return False  # our own voice, coming back through the room
        if self._wake is None or self.busy or self._ended is not None:
            return True
        if self._in_speech():
            return True
        if self._open_until is not None and self.stream_s <= self._open_until:
            return True
        if self._open_until is not None:
            self._open_until = None
            self._woken_by = None
            await self._emit({"type": "state", "state": "waiting"})
        return False

    def _in_speech(self) -> bool:
        return not self._ep_stale and self._endpointer.in_speech

    def _echo_playing(self) -> bool:
        end = self._clock.end
        return end > self._echo_cut and time.monotonic() < end + ECHO_TAIL_S

    def _shift(self, ev: VadEvent) -> VadEvent:
        """A VAD event of the current endpointer in the session's stream time."""
        if self._ep_origin:
            ev.start_s += self._ep_origin
            ev.end_s += self._ep_origin
            ev.detected_s += self._ep_origin
        return ev

    def _drop_speculation(self) -> None:
        if self._speculation is not None:
            self._speculation[1].cancel()
            self._speculation = None

    def _record_turn(self, turn: Turn) -> None:
        hook = getattr(turn.responder, "record", None)
        try:
            if hook is not None:
                hook(self.conversation_id, turn)
            if self._record is not None:
                self._record(turn)
        except Exception:  # the conversation record must not kill the session
            log.exception("recording the voice turn failed")

    def _stream_time_to_monotonic(self, t: float) -> float:
        """Wall-clock estimate of stream time ``t``, assuming the stream is fed in real time."""
        origin = self._stream_origin if self._stream_origin is not None else time.monotonic()
        return origin + t
