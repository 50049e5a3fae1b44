"""An Intents component over the real tools and a real (journaled) world model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from appliance.config import IntentsConfig
from appliance.intents.component import Intents
from appliance.tools.calculator import Calculator
from appliance.tools.clock import Clock
from appliance.tools.registry import ToolRegistry
from appliance.tools.timers import Timers
from appliance.tools.world_tools import WorldDelete, WorldGet, WorldList, WorldSet
from appliance.world.store import LocalWorld

TIMEZONE = "Pacific/Auckland"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[LocalWorld]:
    w = LocalWorld(tmp_path / "world")
    await w.start()
    yield w
    await w.stop()


@pytest.fixture
def timers() -> Timers:
    t = Timers(timezone=TIMEZONE)
    yield t
    t.suspend()


@pytest.fixture
async def intents(world: LocalWorld, timers: Timers) -> AsyncIterator[Intents]:
    tools = ToolRegistry([Calculator(), Clock(TIMEZONE), timers, WorldGet(world),
                          WorldSet(world), WorldList(world), WorldDelete(world)])
    component = Intents(IntentsConfig(), tools, tool_timeout_s=5.0)
    await component.start()
    yield component
    await component.stop()
