"""Pieces of the loop that need no model: memory window, tool timeouts, unknown tools."""

from __future__ import annotations

import asyncio
from typing import Any

from appliance.agent.memory import ConversationMemory
from appliance.agent.tools.base import Tool
from appliance.agent.tools.calculator import Calculator
from appliance.agent.tools.registry import ToolRegistry


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
