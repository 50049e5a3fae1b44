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
from appliance.voice.component import VoiceComponent
from appliance.voice.pipeline import VoiceSession
from appliance.voice.reply import AgentResponder
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
