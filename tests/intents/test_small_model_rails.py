"""The loop's rails for small models, driven by the scripted LLM test double of
tests/agent/test_loop_parts.py replaying what small models do wrong: the same call again and
again, a call written as answer text, a number other than the calculator's."""

from __future__ import annotations

import json

from appliance.agent.events import AgentEvent
from appliance.agent.loop import Agent
from appliance.config import AgentConfig
from appliance.tools.calculator import Calculator
from appliance.tools.clock import Clock
from appliance.tools.registry import ToolRegistry
from tests.agent.test_loop_parts import CountingTool, ScriptedLLM, call, run


def answer(events: list[AgentEvent]) -> str:
    streamed = "".join(e.data["text"] for e in events if e.type == "token")
    assert streamed == events[-1].data["text"]  # what is spoken is what is shown
    return streamed


async def test_a_repeated_identical_call_ends_the_turn_with_the_tools_answer() -> None:
    same = call("calculator", {"expression": "12*7"}, "a")
    llm = ScriptedLLM([("", same), ("", same), ("", same), ("", same), ("Never asked.", None)])
    agent = Agent(AgentConfig(max_steps=4), ToolRegistry([Calculator()]), lambda: llm)
    events = await run(agent, "What is 12 times 7?")
    assert [e.type for e in events].count("tool_call") == 1  # run once, not four times
    assert answer(events) == "The answer is 84."
    assert events[-1].data["finish_reason"] == "repeated_tool_call"
    assert len(llm.requests) == 2


async def test_a_tool_call_written_as_text_is_run_and_never_shown() -> None:
    written = json.dumps({"name": "calculator", "arguments": {"expression": "15/100*80"}})
    llm = ScriptedLLM([(written, None), ("15 percent of 80 is 12.", None)])
    agent = Agent(AgentConfig(), ToolRegistry([Calculator()]), lambda: llm)
    events = await run(agent, "What's 15 percent of 80?")
    result = next(e.data for e in events if e.type == "tool_result")
    assert result["ok"] and result["result"]["value"] == 12
    assert answer(events) == "15 percent of 80 is 12."
    assert "{" not in "".join(e.data["text"] for e in events if e.type == "token")
    # In a code fence, as the last step (no tools left to offer): answered from the result.
    fenced = "```json\n" + json.dumps({"name": "calculator",
                                       "arguments": {"expression": "2**10"}}) + "\n```"
    llm = ScriptedLLM([("", call("calculator", {"expression": "2**10"}, "x")), (fenced, None)])
    agent = Agent(AgentConfig(max_steps=1), ToolRegistry([Calculator()]), lambda: llm)
    events = await run(agent, "2 to the 10th?")
    assert answer(events) == "The answer is 1024."
    assert events[-1].data["finish_reason"] == "tool_call_as_text"


async def test_json_with_no_tool_behind_it_is_not_the_answer() -> None:
    llm = ScriptedLLM([('{"name": "weather", "arguments": {"city": "Paris"}}', None)])
    agent = Agent(AgentConfig(), ToolRegistry([Calculator()]), lambda: llm)
    events = await run(agent, "Weather in Paris?")
    assert answer(events) == "Sorry, I couldn't work that out."


async def test_the_spoken_number_is_the_calculators() -> None:
    llm = ScriptedLLM([("", call("calculator", {"expression": "12*7"}, "c")),
                       ("12 * 7 = 88", None)])
    agent = Agent(AgentConfig(), ToolRegistry([Calculator()]), lambda: llm)
    events = await run(agent, "What is 12 times 7?")
    assert answer(events) == "The answer is 84."
    assert events[-1].data["finish_reason"] == "answer_from_tool"
    # A right answer, rounded the way people round, stays the model's.
    llm = ScriptedLLM([("", call("calculator", {"expression": "10/3"}, "c")),
                       ("That is about 3.33.", None)])
    events = await run(Agent(AgentConfig(), ToolRegistry([Calculator()]), lambda: llm),
                       "10 divided by 3?")
    assert answer(events) == "That is about 3.33."


async def test_the_spoken_time_is_the_clocks() -> None:
    llm = ScriptedLLM([("", call("clock", {}, "c")), ("It is 25:99 on Blursday.", None)])
    agent = Agent(AgentConfig(), ToolRegistry([Clock("UTC")]), lambda: llm)
    events = await run(agent, "What time is it?")
    said = answer(events)
    result = next(e.data for e in events if e.type == "tool_result")["result"]
    assert said.startswith("It's ") and result["weekday"] in said
    assert events[-1].data["finish_reason"] == "answer_from_tool"


async def test_different_calls_still_run_in_turn() -> None:
    counter = CountingTool()
    llm = ScriptedLLM([("", call("counter", {"n": 1}, "a")), ("", call("counter", {"n": 2}, "b")),
                       ("Counted twice.", None)])
    events = await run(Agent(AgentConfig(), ToolRegistry([counter]), lambda: llm), "count")
    assert counter.calls == 2 and answer(events) == "Counted twice."
