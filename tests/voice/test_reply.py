"""What a cut-off reply leaves in the conversation the next answer is based on."""

from __future__ import annotations

import pytest

from appliance.agent.loop import Agent
from appliance.config import AgentConfig
from appliance.tools.registry import ToolRegistry
from appliance.voice.pipeline import Turn
from appliance.voice.reply import AgentResponder, LlmResponder, ReplyError


def test_llm_history_holds_what_was_heard_and_a_late_cut_replaces_it() -> None:
    responder = LlmResponder(router=None, system_prompt="Be brief.")
    turn = Turn(user="Tell me about Paris", reply="Paris is big. It is old.",
                spoken="Paris is big. It is old.")
    responder.record("c1", turn)
    assert responder.history("c1") == [
        {"role": "user", "content": "Tell me about Paris"},
        {"role": "assistant", "content": "Paris is big. It is old."}]
    # Barged into while its audio still played: the same turn, now cut off.
    turn.spoken, turn.cut_off = "Paris is big…", True
    responder.record("c1", turn)
    assert responder.history("c1")[-1] == {"role": "assistant", "content": "Paris is big…"}
    assert len(responder.history("c1")) == 2 and responder.history("other") == []


async def test_agent_memory_learns_the_cut_and_agent_errors_become_reply_errors() -> None:
    agent = Agent(AgentConfig(), ToolRegistry(), lambda: None)
    responder = AgentResponder(agent)
    # Cancelled before the agent stored the turn: the cut reply is stored as heard.
    responder.record("c2", Turn(user="Count to ten", reply="One two three four",
                                spoken="One two…", cut_off=True))
    assert agent.memory.history("c2") == [{"role": "user", "content": "Count to ten"},
                                          {"role": "assistant", "content": "One two…"}]
    # The agent stored the full reply itself; a later cut rewrites what it remembers.
    agent.memory.append("c3", [{"role": "user", "content": "Hi"},
                               {"role": "assistant", "content": "Hello, how are you?"}])
    responder.record("c3", Turn(user="Hi", reply="Hello, how are you?", spoken="Hello…",
                                cut_off=True))
    assert agent.memory.history("c3")[-1]["content"] == "Hello…"
    # With no LLM on the node the agent's error event surfaces with its code.
    with pytest.raises(ReplyError) as caught:
        async for _ in responder("Hello", "c4"):
            pass
    assert caught.value.code == "no_llm_available"
