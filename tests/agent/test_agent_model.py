"""The agent loop with the real tiny model: calculator, clock and world tools end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from appliance.agent.events import AgentEvent
from appliance.agent.loop import Agent
from appliance.config import AgentConfig, ExpertConfig
from appliance.llm.chat import ChatChunk, ChatRequest
from appliance.llm.engine import Engine, EngineSettings
from appliance.tools.base import invoke
from appliance.tools.calculator import Calculator
from appliance.tools.clock import Clock
from appliance.tools.registry import ToolRegistry
from appliance.tools.world_tools import WorldGet, WorldList, WorldSet
from appliance.world.store import LocalWorld

pytestmark = pytest.mark.model

MODEL_FILE = "llm/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture
async def engine(models_dir: Path) -> AsyncIterator[Engine]:
    path = models_dir / MODEL_FILE
    eng = Engine(EngineSettings(model_path=path, model_id=path.stem, context=2048, threads=2,
                                slots=2))
    await eng.start()
    yield eng
    await eng.stop()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[LocalWorld]:
    w = LocalWorld(tmp_path / "world")
    await w.start()
    yield w
    await w.stop()


def experts() -> dict[str, ExpertConfig]:
    return {
        "calc": ExpertConfig(system_prompt="You are a calculator assistant. Use the calculator "
                                           "tool for arithmetic.",
                             tools=["calculator"], tool_choice="required"),
        "time": ExpertConfig(system_prompt="You tell the time using the clock tool.",
                             tools=["clock"], tool_choice="required"),
        "home": ExpertConfig(system_prompt="You control the home by setting keys of the world "
                                           "model with world_set.",
                             tools=["world_set"], tool_choice="required"),
        "look": ExpertConfig(system_prompt="You read the home state with world_get.",
                             tools=["world_get"], tool_choice="required"),
        "list": ExpertConfig(system_prompt="You list the home state with world_list. The "
                                           "prefix selects keys: 'kitchen.' lists the kitchen, "
                                           "'' lists everything.",
                             tools=["world_list"], tool_choice="required"),
    }


def make_agent(engine: Engine, world: LocalWorld) -> Agent:
    tools = ToolRegistry([Calculator(), Clock("UTC"), WorldGet(world), WorldSet(world),
                          WorldList(world)])
    cfg = AgentConfig(max_steps=1, max_tokens=48, experts=experts())
    return Agent(cfg, tools, lambda: engine)


async def turn(bot: Agent, text: str, **kw: Any) -> list[AgentEvent]:
    events = [e async for e in bot.run(text, **kw)]
    assert events[-1].type == "final", events[-1]
    answer = "".join(e.data["text"] for e in events if e.type == "token")
    assert answer == events[-1].data["text"]
    return events


def one(events: list[AgentEvent], kind: str) -> dict[str, Any]:
    found = [e.data for e in events if e.type == kind]
    assert len(found) == 1, (kind, events)
    return found[0]


async def test_calculator_through_the_agent(engine: Engine, world: LocalWorld) -> None:
    agent = make_agent(engine, world)
    events = await turn(agent, "What is 12 times 7?", agent="calc", conversation_id="c1")
    call, result = one(events, "tool_call"), one(events, "tool_result")
    assert call["name"] == "calculator" and result["id"] == call["id"]
    # Whatever expression the model wrote, the observation is exactly the calculator's.
    expected = await invoke(Calculator(), call["arguments"], 5.0)
    assert result == {"id": call["id"], "name": "calculator", **expected}
    assert events[-1].data["steps"] == 1
    assert [e.type for e in events].index("tool_result") < [e.type for e in events].index("final")
    # The turn is remembered for the next one in the same conversation.
    assert [m["role"] for m in agent.memory.history("c1")] == ["user", "assistant"]


async def test_clock_through_the_agent(engine: Engine, world: LocalWorld) -> None:
    events = await turn(make_agent(engine, world), "What time is it?", agent="time")
    call, result = one(events, "tool_call"), one(events, "tool_result")
    assert call["name"] == "clock"
    assert result["ok"] is True, result
    assert {"iso", "date", "time", "weekday"} <= set(result["result"])


async def test_world_set_through_the_agent(engine: Engine, world: LocalWorld) -> None:
    events = await turn(make_agent(engine, world), "Turn the kitchen light on.", agent="home")
    call, result = one(events, "tool_call"), one(events, "tool_result")
    assert call["name"] == "world_set"
    assert result["ok"] is True, result
    key, value = call["arguments"]["key"], call["arguments"]["value"]
    stored = await world.get(key)
    assert stored is not None and stored.value == value and stored.version == 1


async def test_unknown_agent_is_an_error_event(engine: Engine, world: LocalWorld) -> None:
    events = [e async for e in make_agent(engine, world).run("hi", agent="nobody")]
    assert [e.type for e in events] == ["error"]
    assert events[0].data["code"] == "unknown_agent" and "calc" in events[0].data["message"]


async def test_world_get_and_world_list_through_the_agent(engine: Engine,
                                                          world: LocalWorld) -> None:
    await world.set("kitchen.light", "on")
    await world.set("hall.temperature", 21)
    await world.set("kitchen.oven", {"state": "off"})
    await world.set("kitchen.light", "off")  # now version 4
    agent = make_agent(engine, world)
    events = await turn(agent, "Get the key kitchen.light", agent="look")
    call, result = one(events, "tool_call"), one(events, "tool_result")
    assert call["name"] == "world_get"
    stored = await world.get(call["arguments"]["key"])
    assert stored is not None, call  # the model asked for a key that is there...
    # ...and the observation is exactly what the store holds for it.
    assert result == {"id": call["id"], "name": "world_get", "ok": True,
                      "result": stored.to_json()}
    events = await turn(agent, "What is in the kitchen?", agent="list")
    call, result = one(events, "tool_call"), one(events, "tool_result")
    assert call["name"] == "world_list" and result["ok"] is True, result
    prefix = call["arguments"].get("prefix", "")
    expected = {e.key: e.value for e in await world.items() if e.key.startswith(prefix)}
    assert expected, call  # the prefix it chose selects something
    assert result["result"] == {"entries": expected, "truncated": False}


class RecordingClient:
    """Passes every request to the real engine and keeps a copy (the model is real)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.name
        self.requests: list[ChatRequest] = []

    def model_ids(self) -> list[str]:
        return self.engine.model_ids()

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        self.requests.append(request)
        async for chunk in self.engine.stream(request):
            yield chunk


async def test_always_makes_the_real_model_call_a_tool_each_step_up_to_max_steps(
        engine: Engine, world: LocalWorld) -> None:
    tools = ToolRegistry([Calculator(), Clock("UTC")])
    cfg = AgentConfig(max_steps=3, max_tokens=48, experts={
        "calc": ExpertConfig(system_prompt="You are a calculator assistant. Use the calculator "
                                           "tool for arithmetic.",
                             tools=["calculator"], tool_choice="always")})
    client = RecordingClient(engine)
    events = await turn(Agent(cfg, tools, lambda: client), "What is 12 times 7, plus 5?",
                        agent="calc")
    kinds = [e.type for e in events]
    calls = [e.data for e in events if e.type == "tool_call"]
    results = [e.data for e in events if e.type == "tool_result"]
    assert 1 <= len(calls) <= 3 and len(results) == len(calls), kinds
    assert [c["name"] for c in calls] == ["calculator"] * len(calls)
    assert [r["id"] for r in results] == [c["id"] for c in calls]
    for c, r in zip(calls, results, strict=True):
        assert r == {"id": c["id"], "name": "calculator",
                     **await invoke(Calculator(), c["arguments"], 5.0)}
    # Every call the loop ran was a new one: a repeated identical call ends the turn.
    assert len({str(c["arguments"]) for c in calls}) == len(calls)
    assert events[-1].data["steps"] == len(calls)
    # Each forced step offers only the expert's tool.
    forced = client.requests[:len(calls)]
    assert [r.tool_choice for r in forced] == ["required"] * len(calls)
    assert [[t["function"]["name"] for t in r.tools or []] for r in forced] == \
        [["calculator"]] * len(calls)
    if len(calls) < 3:  # the model asked again for what it had: answered from the result
        assert events[-1].data["finish_reason"] == "repeated_tool_call"
    else:  # three forced steps, then one answer without tools
        assert client.requests[3].tools is None
    assert kinds.index("final") > max(i for i, k in enumerate(kinds) if k == "tool_result")
