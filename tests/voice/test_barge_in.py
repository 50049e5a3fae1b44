"""Barge-in: speech while the assistant talks stops playback and synthesis; the record says so.

The microphone and speaker are the hand-written fakes of tests/support/fake_audio.py
(a sound card cannot exist here); VAD, Whisper and piper are real. The reply
comes from a scripted responder because the subject here is the pipeline, not
the LLM (the WebSocket test uses the real one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest

from appliance.voice.component import VoiceComponent
from appliance.voice.pipeline import CUT_OFF_MARK, Turn, VoiceSession
from tests.support.fake_audio import FakeMicrophone, FakeSpeaker, wav_to_pcm16

pytestmark = pytest.mark.model

#: In a scripted text, where the reply stops coming: what follows is "still being generated"
#: when the user interrupts, whatever the speed of this box, and must never be spoken.
HOLD = "|"
LONG_REPLY = ("Paris is the capital of France. It lies on the river Seine in the north of the "
              "country. About two million people live in the city itself. | It is famous for "
              "the Eiffel Tower, the Louvre and its cafes. Many millions of visitors come "
              "every year.")
#: The user interrupts once this much of the reply was heard...
HEARD_S = 0.5
#: ...while at least this much is still queued on the speaker, so the stop is mid-reply.
AHEAD_S = 1.5


class ScriptedReply:
    """A responder that streams fixed texts word by word and keeps what it is told; a text
    stops at HOLD until it is cancelled (the LLM still generating)."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.recorded: list[tuple[str, Turn]] = []
        self.cancelled = False

    async def __call__(self, text: str, conversation_id: str) -> AsyncIterator[str]:
        shown, hold, _ = self.texts.pop(0).partition(HOLD)
        try:
            for word in shown.split():
                await asyncio.sleep(0)  # a token at a time
                yield word + " "
            if hold:
                await asyncio.Event().wait()  # the rest never comes before the barge-in
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled = True
            raise

    def record(self, conversation_id: str, turn: Turn) -> None:
        self.recorded.append((conversation_id, turn))


class Until:
    """A condition the fake microphone's ``silence_until`` checks before each 30 ms chunk."""

    def __init__(self, condition: Callable[[], bool]) -> None:
        self.is_set = condition


def onset_s(pcm16: bytes) -> float:
    """Where the speech in ``pcm16`` (16 kHz) really begins: the first loud 10 ms."""
    x = np.frombuffer(pcm16, np.int16).astype(np.float32) / 32768
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    loud = np.nonzero(np.sqrt((frames ** 2).mean(axis=1)) > 0.02)[0]
    return float(loud[0]) * 0.01


async def run_barge_in(voice: VoiceComponent, speech: Callable[..., bytes],
                       ) -> dict[str, Any]:
    """One turn interrupted in the middle of its playback; what happened, with timings."""
    speaker = FakeSpeaker()
    reply = ScriptedReply(LONG_REPLY, "Okay.")
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    def mid_reply() -> bool:
        now = time.monotonic()
        heard = sum(max(0.0, min(p.end, now) - p.start) for p in speaker.played)
        return heard >= HEARD_S and speaker.busy_until - now >= AHEAD_S

    session = VoiceSession(voice.models, conversation_id="barge", emit=emit, output=speaker,
                           responder=lambda: reply)
    interrupt = wav_to_pcm16(speech("Stop. Wait a moment."))
    mic = (FakeMicrophone()
           .silence(0.3)
           .speech(wav_to_pcm16(speech("What is the capital of France?")), "question")
           .silence_until(Until(mid_reply), "listening to the reply")  # type: ignore[arg-type]
           .speech(interrupt, "interrupt")
           .silence(1.0))
    async for chunk in mic.chunks():
        await session.feed(chunk)
    await session.wait_idle()  # the interruption's own turn
    await session.close()
    spoken_at = mic.marker("interrupt").wall + onset_s(interrupt)
    return {"events": events, "speaker": speaker, "reply": reply, "session": session,
            "latency_s": (speaker.stopped_at or float("inf")) - spoken_at}


async def test_speech_during_playback_stops_it_and_records_the_cut(
        voice: VoiceComponent, speech: Callable[..., bytes]) -> None:
    result = await run_barge_in(voice, speech)
    events, speaker, reply = result["events"], result["speaker"], result["reply"]
    session: VoiceSession = result["session"]
    kinds = [e["type"] for e in events]
    assert "barge_in" in kinds, kinds
    # The reply had started to play before the user spoke again.
    assert kinds.index("audio") < kinds.index("barge_in")
    # Playback stopped in the middle of what the speaker had: fewer seconds heard than were
    # queued (at least AHEAD_S was still queued when the interruption began).
    assert speaker.stopped_at is not None
    assert HEARD_S <= speaker.seconds_heard() < speaker.seconds_queued() - 0.2
    # Nothing of the reply reached the speaker after the stop, and no audio event came
    # between the barge-in and the interruption's own transcript.
    first_reply = [p for p in speaker.played if p.text != "Okay."]
    assert all(p.handed < speaker.stopped_at for p in first_reply)
    barge = kinds.index("barge_in")
    next_transcript = next(i for i, e in enumerate(events)
                           if i > barge and e["type"] == "transcript" and e["final"])
    assert "audio" not in kinds[barge:next_transcript], kinds
    # Pending generation and synthesis stopped too: the held rest of the reply was never
    # generated, synthesised or played.
    assert reply.cancelled
    assert not any("Eiffel" in p.text for p in speaker.played)
    # The turn is recorded as cut off where it stopped, for the conversation and the responder.
    first = session.turns[0]
    assert "capital" in first.user.lower()
    assert first.cut_off and first.spoken.endswith(CUT_OFF_MARK)
    heard = first.spoken.removesuffix(CUT_OFF_MARK).split()
    assert heard and heard == first.reply.split()[: len(heard)]
    assert len(heard) < len(first.reply.split())
    assert reply.recorded[0][1] is first and reply.recorded[0][0] == "barge"
    cut = next(e for e in events if e["type"] == "reply" and e["cut_off"])
    assert cut["spoken"] == first.spoken
    # The interruption itself was heard and became the next turn.
    assert any(w in events[next_transcript]["text"].lower() for w in ("stop", "wait")), events
    # The bound (about 200 ms) is measured by bench/voice_turn.py, not asserted here.
    print(f"barge-in: playback stopped {result['latency_s'] * 1000:.0f} ms after speech began")
