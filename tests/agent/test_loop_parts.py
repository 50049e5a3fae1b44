"""Pieces of the loop that need no model: memory window, tool timeouts, unknown tools, and
the loop's own rules (thought events, the step budget, expert profiles) driven by a
scripted LLM test double; tests/agent/test_agent_model.py runs the loop with the real model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from appliance.agent.events import AgentEvent
from appliance.agent.loop import Agent
from appliance.agent.memory import ConversationMemory
from appliance.config import AgentConfig, ExpertConfig
from appliance.llm.chat import ChatChunk, ChatRequest
from appliance.tools.base import Tool
from appliance.tools.calculator import Calculator
from appliance.tools.registry import ToolRegistry


class SlowTool(Tool):
    """Hand-written for this test: a tool that never finishes on its own."""

    name = "slow"
    description = "Sleeps."
    parameters = {"type": "object", "properties": {}}

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def call(self, args: dict[str, Any]) -> Any:
        try:
            await asyncio.Event().wait()
        finally:
            self.cancelled.set()


async def test_a_tool_that_overruns_its_timeout_is_cancelled_and_reported() -> None:
    slow = SlowTool()
    registry = ToolRegistry([slow, Calculator()])
    obs = await registry.invoke("slow", {}, 0.2)
    assert obs == {"ok": False, "error": "slow did not finish within 0.2 s"}
    assert slow.cancelled.is_set()


async def test_an_unknown_tool_is_an_observation_naming_the_real_ones() -> None:
    obs = await ToolRegistry([Calculator()]).invoke("rm_rf", {}, 1.0)
    assert obs["ok"] is False and "unknown tool 'rm_rf'" in obs["error"]
    assert "calculator" in obs["error"]


def test_memory_keeps_a_bounded_window_per_conversation() -> None:
    memory = ConversationMemory(max_messages=4, max_conversations=2)
    for i in range(5):
        memory.append("a", [{"role": "user", "content": f"q{i}"},
                            {"role": "assistant", "content": f"a{i}"}])
    assert [m["content"] for m in memory.history("a")] == ["q3", "a3", "q4", "a4"]
    memory.append("b", [{"role": "user", "content": "hi"}])
    memory.append("c", [{"role": "user", "content": "hello"}])
    assert memory.history("a") == [] and len(memory) == 2  # least recently used forgotten
    assert memory.history(None) == []
    odd = ConversationMemory(max_messages=3)
    odd.append("x", [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"},
                     {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}])
    # The window never starts with an answer whose question fell out.
    assert [m["role"] for m in odd.history("x")] == ["user", "assistant"]


class ScriptedLLM:
    """Scripted test double of an LLMClient: replays canned answers, one per request, and
    keeps every request it was sent. Each answer is (text, tool calls or None)."""

    name = "scripted"

    def __init__(self, answers: list[tuple[str, list[dict[str, Any]] | None]]) -> None:
        self.answers = list(answers)
        self.requests: list[ChatRequest] = []

    def model_ids(self) -> list[str]:
        return ["scripted"]

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        self.requests.append(request)
        text, calls = self.answers.pop(0)
        for word in text.split(" "):
            yield ChatChunk(content=word if word == text.split(" ")[0] else " " + word)
        yield ChatChunk(tool_calls=calls, finish_reason="tool_calls" if calls else "stop",
                        served_by="local")


class CountingTool(Tool):
    """Hand-written for these tests: counts its calls."""

    name = "counter"
    description = "Counts."
    parameters = {"type": "object", "properties": {}}

    def __init__(self) -> None:
        self.calls = 0

    async def call(self, args: dict[str, Any]) -> Any:
        self.calls += 1
        return {"count": self.calls}


def call(name: str, args: dict[str, Any], call_id: str) -> list[dict[str, Any]]:
    return [{"id": call_id, "type": "function",
             "function": {"name": name, "arguments": json.dumps(args)}}]


async def run(bot: Agent, text: str, **kw: Any) -> list[AgentEvent]:
    events = [e async for e in bot.run(text, **kw)]
    assert events[-1].type == "final", events[-1]
    return events


async def test_what_the_model_says_before_a_tool_call_is_a_thought_event() -> None:
    llm = ScriptedLLM([("Let me work that out.", call("calculator", {"expression": "6*7"}, "c1")),
                       ("It is 42.", None)])
    agent = Agent(AgentConfig(), ToolRegistry([Calculator()]), lambda: llm)
    events = await run(agent, "What is six times seven?")
    kinds = [e.type for e in events]
    # The answer after the calculator is checked against its value, so it comes whole.
    assert kinds == ["token"] * 5 + ["thought", "tool_call", "tool_result", "token", "final"]
    assert events[5].data == {"text": "Let me work that out."}
    assert events[7].data == {"id": "c1", "name": "calculator", "ok": True,
                              "result": {"expression": "6*7", "value": 42}}
    # The thought's tokens were streamed too; final.text is the last step's answer alone.
    streamed = "".join(e.data["text"] for e in events if e.type == "token")
    assert streamed == "Let me work that out." + "It is 42."
    assert events[-1].data["text"] == "It is 42." and events[-1].data["steps"] == 1
    # The model saw its own thought and tool call, then the observation.
    sent = llm.requests[1].messages
    assert sent[-2]["role"] == "assistant" and sent[-2]["content"] == "Let me work that out."
    assert sent[-1]["role"] == "tool" and sent[-1]["tool_call_id"] == "c1"
    # Without words before the call there is no thought event.
    llm = ScriptedLLM([("", call("calculator", {"expression": "1+1"}, "c2")), ("Two.", None)])
    events = await run(Agent(AgentConfig(), ToolRegistry([Calculator()]), lambda: llm), "1+1?")
    assert [e.type for e in events] == ["tool_call", "tool_result", "token", "final"]


async def test_always_forces_a_tool_every_step_until_max_steps_then_asks_without_tools() -> None:
    counter = CountingTool()
    # Different arguments each step: a repeated identical call would end the turn early.
    llm = ScriptedLLM([("", call("counter", {"n": i}, f"c{i}")) for i in range(3)]
                      + [("Done.", None)])
    cfg = AgentConfig(max_steps=3, experts={
        "busy": ExpertConfig(tools=["counter"], tool_choice="always")})
    events = await run(Agent(cfg, ToolRegistry([counter, Calculator()]), lambda: llm), "go",
                       agent="busy")
    assert [e.type for e in events] == ["tool_call", "tool_result"] * 3 + ["token", "final"]
    assert counter.calls == 3 and events[-1].data["steps"] == 3
    assert [r.tool_choice for r in llm.requests] == ["required"] * 3 + [None]
    assert [len(r.tools or []) for r in llm.requests] == [1, 1, 1, 0]
    # "required" forces the first step only; the next steps are the model's choice.
    llm = ScriptedLLM([("", call("counter", {"n": 1}, "a")), ("", call("counter", {"n": 2}, "b")),
                       ("Done.", None)])
    cfg = AgentConfig(max_steps=3, tool_choice="required")
    await run(Agent(cfg, ToolRegistry([counter]), lambda: llm), "go")
    assert [r.tool_choice for r in llm.requests] == ["required", "auto", "auto"]


async def test_calls_past_the_step_budget_in_one_answer_are_not_run() -> None:
    counter = CountingTool()
    two = call("counter", {}, "a") + call("counter", {}, "b")
    llm = ScriptedLLM([("", two), ("Done.", None)])
    events = await run(Agent(AgentConfig(max_steps=1), ToolRegistry([counter]), lambda: llm),
                       "go")
    results = [e.data for e in events if e.type == "tool_result"]
    assert counter.calls == 1 and results[0]["ok"] is True
    assert results[1] == {"id": "b", "name": "counter", "ok": False,
                          "error": "not run: this turn's 1 tool calls (agent.max_steps) are "
                                   "used up"}
    assert events[-1].data["steps"] == 1 and llm.requests[1].tools is None


async def test_an_expert_asks_its_own_model_and_may_not_use_other_tools() -> None:
    counter = CountingTool()
    llm = ScriptedLLM([("", call("counter", {}, "x")), ("Sorry.", None)])
    cfg = AgentConfig(experts={"calc": ExpertConfig(system_prompt="Only arithmetic.",
                                                    tools=["calculator"], model="tiny-math")})
    events = await run(Agent(cfg, ToolRegistry([counter, Calculator()]), lambda: llm), "count",
                       agent="calc")
    result = next(e.data for e in events if e.type == "tool_result")
    assert result == {"id": "x", "name": "counter", "ok": False,
                      "error": "tool 'counter' is not allowed for agent 'calc'"}
    assert counter.calls == 0
    assert [r.model for r in llm.requests] == ["tiny-math", "tiny-math"]
    assert llm.requests[0].messages[0] == {"role": "system", "content": "Only arithmetic."}
    assert [t["function"]["name"] for t in llm.requests[0].tools or []] == ["calculator"]
    assert events[-1].data["agent"] == "calc"
    # The default agent asks the router's default model with every tool.
    llm = ScriptedLLM([("Hi.", None)])
    await run(Agent(cfg, ToolRegistry([counter, Calculator()]), lambda: llm), "hi")
    assert llm.requests[0].model == "default"
    assert [t["function"]["name"] for t in llm.requests[0].tools or []] == ["calculator",
                                                                            "counter"]
