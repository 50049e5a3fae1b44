"""By voice: an everyday request ends its turn at the first short pause (it is already whole),
instead of waiting out the trailing silence, and is answered by the intent; a request the
intents do not cover still waits the full silence. Real Whisper, Silero, piper and espeak-ng
speech, fed in real time by the hand-written fake microphone."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.agent.loop import Agent
from appliance.config import AgentConfig
from appliance.intents.component import Intents
from appliance.tools.registry import ToolRegistry
from appliance.voice.audio import pcm16_to_float
from appliance.voice.component import VoiceComponent
from appliance.voice.pipeline import VoiceSession
from appliance.voice.reply import AgentResponder
from appliance.voice.vad import EARLY_END_S, PAUSE_S, WINDOW_S
from tests.agent.test_loop_parts import ScriptedLLM
from tests.support.fake_audio import FakeMicrophone, FakeSpeaker, wav_to_pcm16
from tests.voice.conftest import speech, speech_dir, voice  # noqa: F401 - fixtures
from tests.voice.test_pipeline import _configured

pytestmark = pytest.mark.model

#: Far longer than transcribing a short question takes, even on a loaded box: a turn that
#: ended before this silence ran out was ended by the early end, not by the endpointer.
TRAILING_MS = 5000


async def talk(engine: VoiceComponent, agent: Agent, pcm: bytes) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    session = VoiceSession(engine, conversation_id="v", emit=emit, output=FakeSpeaker(),
                           responder=lambda: AgentResponder(agent))
    mic = FakeMicrophone().silence(0.3).speech(pcm).silence(TRAILING_MS / 1000 + 1.0)
    async for chunk in mic.chunks():
        await session.feed(chunk)
    await session.wait_idle()
    await session.close()
    return events


async def test_an_intent_turn_ends_at_the_pause_and_other_turns_wait_the_silence(
        voice: VoiceComponent, speech: Callable[..., bytes],  # noqa: F811
        intents: Intents, models_dir: Path, tmp_path: Path) -> None:
    engine = _configured(voice, models_dir, tmp_path, trailing_silence_ms=TRAILING_MS)
    agent = Agent(AgentConfig(), intents.tools, lambda: None, intents)
    events = await talk(engine, agent, wav_to_pcm16(speech("What time is it?")))
    reply = next(e for e in events if e["type"] == "reply")
    assert re.fullmatch(r"It's \d{1,2}:\d\d [AP]M\.", reply["text"]), events
    assert reply["timings"]["endpointing_s"] < TRAILING_MS / 1000 - 0.5, reply["timings"]
    assert [e["type"] for e in events].count("speech_end") == 1
    # The same box without intents: the LLM answers, after the whole trailing silence.
    llm = ScriptedLLM([("It is late.", None)])
    plain = Agent(AgentConfig(), ToolRegistry(), lambda: llm)
    events = await talk(engine, plain, wav_to_pcm16(speech("What time is it?")))
    reply = next(e for e in events if e["type"] == "reply")
    assert reply["text"] == "It is late."
    assert reply["timings"]["endpointing_s"] >= TRAILING_MS / 1000 - 0.1, reply["timings"]


class TranscribedBefore:
    """The real models, except that every transcription hands back at once the transcript
    the real Whisper made of the whole recording beforehand: the pause's transcript is then
    ready long before the shortest silence that may end a turn has passed."""

    def __init__(self, engine: Any, transcript: Any) -> None:
        self._engine = engine
        self._transcript = transcript

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    async def transcribe(self, samples: Any, **options: Any) -> Any:
        return self._transcript


async def test_an_early_end_waits_the_shortest_pause_though_the_transcript_is_ready_sooner(
        voice: VoiceComponent, speech: Callable[..., bytes],  # noqa: F811
        intents: Intents, models_dir: Path, tmp_path: Path) -> None:
    """Transcription starts at PAUSE_S of silence; the turn ends no sooner than EARLY_END_S,
    so a speaker who pauses briefly inside a request is not cut off by a fast transcript."""
    assert PAUSE_S < EARLY_END_S
    engine = _configured(voice, models_dir, tmp_path, trailing_silence_ms=TRAILING_MS)
    pcm = wav_to_pcm16(speech("What time is it?"))
    transcript = await engine.transcribe(pcm16_to_float(pcm))
    assert "time" in transcript.text.lower(), transcript
    agent = Agent(AgentConfig(), intents.tools, lambda: None, intents)
    events = await talk(TranscribedBefore(engine, transcript), agent, pcm)  # type: ignore[arg-type]
    reply = next(e for e in events if e["type"] == "reply")
    assert reply["text"].startswith("It's"), events
    endpointing = reply["timings"]["endpointing_s"]
    assert EARLY_END_S - WINDOW_S / 2 <= endpointing < EARLY_END_S + 0.2, reply["timings"]


@pytest.mark.parametrize("readings, chosen", [
    # Whisper's best reading is no request; a runner-up is a whole everyday one.
    (["Start talking.", "Stop talking."], "Stop talking."),
    (["Himer for 90 seconds.", "timer for 90 seconds."], "timer for 90 seconds."),
    # The best reading is a question about a fact ("it"); a runner-up is whole.
    (["What the is it?", "What day is it?"], "What day is it?"),
    (["and subtract 15 from 40.", "to subtract 15 from 40.", "Subtract 15 from 40"],
     "Subtract 15 from 40"),
    # None is whole: the first that an intent with open words (a fact) understands.
    (["Wear is the spare key?", "Where is the spare key?", "Where is the Spirkey?"],
     "Where is the spare key?"),
    # The best reading is whole already, or no reading is: the best one stays.
    (["What time is it?", "What time is it now?"], "What time is it?"),
    (["What is the capital of France?", "What is the capital of Frans?"],
     "What is the capital of France?"),
    (["Tell me a story about a timer.", "Tell me a story about a timer!"],
     "Tell me a story about a timer."),
])
async def test_the_agent_answers_the_first_reading_an_intent_understands(
        intents: Intents, readings: list[str], chosen: str) -> None:
    agent = Agent(AgentConfig(), intents.tools, lambda: None, intents)
    assert await agent.choose(readings) == chosen
    assert await AgentResponder(agent).choose(readings) == chosen


async def test_a_voice_turn_acts_on_the_reading_it_understands(
        voice: VoiceComponent, intents: Intents,  # noqa: F811
        models_dir: Path, tmp_path: Path) -> None:
    """The session asks the responder which of the transcript's readings to answer, after
    taking the wake phrase off each; the transcript event shows the one acted on."""
    from appliance.voice.stt import Transcript
    agent = Agent(AgentConfig(), intents.tools, lambda: None, intents)
    engine = _configured(voice, models_dir, tmp_path)
    session = VoiceSession(engine, conversation_id="v", emit=_ignore, output=FakeSpeaker(),
                           responder=lambda: AgentResponder(agent))
    heard = Transcript("Okay Nabu, start talking.", "en", 1.5,
                       alternatives=("Okay Nabu, stop talking.",))
    assert await session._heard(heard, "okay nabu") == "stop talking."
    plain = Transcript("Start talking.", "en", 1.0)
    assert await session._heard(plain, None) == "Start talking."
    # No agent (the LLM answers, and copes with a misheard word): the best reading.
    llm_only = VoiceSession(engine, conversation_id="w", emit=_ignore, output=FakeSpeaker(),
                            responder=lambda: None)
    assert await llm_only._heard(Transcript("Start talking.", "en", 1.0,
                                            alternatives=("Stop talking.",)), None) \
        == "Start talking."
    await session.close()
    await llm_only.close()


async def _ignore(event: dict[str, Any]) -> None:
    pass


@pytest.mark.parametrize("question, answer, opens", [
    ("Okay Nabu, what time is it?", r"It's \d{1,2}:\d\d [AP]M\.", True),
    ("Okay Nabu, goodbye.", r"Goodbye.*", False),
    ("Okay Nabu, thank you.", r"You're welcome.*", False),
])
async def test_goodbye_and_thanks_end_the_conversation_and_open_no_follow_up(
        voice: VoiceComponent, intents: Intents,  # noqa: F811
        question: str, answer: str, opens: bool) -> None:
    """Hands-free, with the real agent and intents: after an answer the follow-up window
    opens (a further question needs no wake word); after "goodbye" or "thank you" the
    box goes back to waiting for the wake word at once, not listening to the room."""
    from tests.voice.test_barge_in import Until
    from tests.voice.test_wake import said
    agent = Agent(AgentConfig(), intents.tools, lambda: None, intents)
    events: list[dict[str, Any]] = []

    async def emit(event: dict[str, Any]) -> None:
        events.append(event)

    session = VoiceSession(voice.models, conversation_id="bye", emit=emit,
                           output=FakeSpeaker(), responder=lambda: AgentResponder(agent))
    await session.listen_for_wake(True, follow_up_s=3.0)

    def after_reply() -> bool:  # the state the session went to once the reply had played
        done = [i for i, e in enumerate(events) if e["type"] == "done"]
        return bool(done) and any(e["type"] == "state" for e in events[done[0]:])

    mic = (FakeMicrophone().silence(0.3).speech(await said(voice, question))
           .silence_until(Until(after_reply), "the reply")  # type: ignore[arg-type]
           .silence(0.3))
    async for chunk in mic.chunks():
        await session.feed(chunk)
    await session.wait_idle()
    await session.close()
    reply = next(e for e in events if e["type"] == "reply")
    assert re.fullmatch(answer, reply["text"]), events
    done = next(i for i, e in enumerate(events) if e["type"] == "done")
    state = next(e for e in events[done:] if e["type"] == "state")
    if opens:
        assert state == {"type": "state", "state": "listening", "follow_up_s": 3.0}, state
    else:
        assert state == {"type": "state", "state": "waiting"}, events[done:]
    assert session.turns[-1].ends is not opens


async def test_one_responder_shared_by_two_turns_of_one_conversation_keeps_their_endings_apart(
        intents: Intents) -> None:
    """The box's one AgentResponder serves every voice session, and two may share a
    conversation id (two tabs): one turn's "goodbye" ends that turn's conversation only."""
    import asyncio
    agent = Agent(AgentConfig(), intents.tools, lambda: None, intents)
    responder = AgentResponder(agent)
    read = [asyncio.Event(), asyncio.Event()]
    both_read = asyncio.Event()

    async def turn(i: int, text: str) -> tuple[str, bool]:
        said = "".join([delta async for delta in responder(text, "same")])
        read[i].set()
        await both_read.wait()  # each asks only after both have answered
        return said, responder.ends("same")

    tasks = [asyncio.create_task(turn(0, "goodbye")),
             asyncio.create_task(turn(1, "what time is it?"))]
    await read[0].wait()
    await read[1].wait()
    both_read.set()
    (bye, bye_ends), (clock, clock_ends) = await asyncio.gather(*tasks)
    assert bye == "Goodbye!" and bye_ends
    assert clock.startswith("It's") and not clock_ends
    assert not responder.ends("same")  # asked from a task that read no reply
