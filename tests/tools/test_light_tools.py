"""The light tools called directly, through the same invoke() the agent uses."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance import config as config_mod
from appliance.net.peer import PeerClient
from appliance.tools.base import ToolError, invoke
from appliance.tools.calculator import Calculator, evaluate
from appliance.tools.clock import Clock
from appliance.tools.factory import ToolConfigError, create_tools
from appliance.tools.remote import RemoteToolProxy
from appliance.tools.timers import Timers
from appliance.tools.world_tools import WorldGet, WorldList, WorldSet
from appliance.world.store import LocalWorld

TIMEOUT_S = 5.0


@pytest.mark.parametrize(("expression", "value"), [
    ("2+3*4", 14), ("(2+3)*4", 20), ("12*7", 84), ("2**10", 1024), ("7/2", 3.5),
    ("-3 + abs(-5)", 2), ("sqrt(16)", 4), ("round(pi, 2)", 3.14), ("10 % 4", 2), ("2^3", 8),
])
async def test_calculator_computes(expression: str, value: float) -> None:
    obs = await invoke(Calculator(), {"expression": expression}, TIMEOUT_S)
    assert obs == {"ok": True, "result": {"expression": expression, "value": value}}


@pytest.mark.parametrize(("expression", "words"), [
    ("__import__('os').system('id')", "not allowed"),
    ("open('/etc/passwd').read()", "not allowed"),
    ("(1).__class__", "not allowed"),
    ("9**9**9", "exponent"),
    ("1/0", "division by zero"),
    ("2 +", "not an arithmetic expression"),
    ("x + 1", "not allowed in an expression: x"),
])
async def test_calculator_refuses_what_is_not_arithmetic(expression: str, words: str) -> None:
    obs = await invoke(Calculator(), {"expression": expression}, TIMEOUT_S)
    assert obs["ok"] is False  # the schema's pattern or the evaluator says no
    # The AST evaluator refuses it on its own too, even without the schema in front.
    with pytest.raises(ToolError, match=words.replace("(", r"\(")):
        evaluate(expression)


async def test_bad_arguments_become_an_error_observation_not_an_exception() -> None:
    calc = Calculator()
    missing = await invoke(calc, {}, TIMEOUT_S)
    assert missing["ok"] is False and "'expression' is a required property" in missing["error"]
    wrong_type = await invoke(calc, {"expression": 5}, TIMEOUT_S)
    assert wrong_type["ok"] is False and "expression" in wrong_type["error"]
    extra = await invoke(calc, {"expression": "1", "rm": "-rf"}, TIMEOUT_S)
    assert extra["ok"] is False and "rm" in extra["error"]
    not_object = await invoke(calc, "1+1", TIMEOUT_S)
    assert not_object["ok"] is False and "JSON object" in not_object["error"]


async def test_clock_in_a_timezone() -> None:
    obs = await invoke(Clock(), {"timezone": "Asia/Tokyo"}, TIMEOUT_S)
    assert obs["ok"]
    got = dt.datetime.fromisoformat(obs["result"]["iso"])
    assert got.utcoffset() == dt.timedelta(hours=9)
    now = dt.datetime.now(ZoneInfo("Asia/Tokyo"))
    assert abs((now - got).total_seconds()) < 120
    bad = await invoke(Clock(), {"timezone": "Mars/Olympus"}, TIMEOUT_S)
    assert bad["ok"] is False and "unknown timezone" in bad["error"]
    default = await invoke(Clock("UTC"), {}, TIMEOUT_S)
    assert default["result"]["iso"].endswith("+00:00")


async def test_timers_set_list_cancel_and_fire() -> None:
    timers = Timers()
    fired: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    timers.listen(fired.put_nowait)
    long = await invoke(timers, {"action": "set", "seconds": 600, "label": "tea"}, TIMEOUT_S)
    short = await invoke(timers, {"action": "set", "seconds": 0.05, "label": "eggs"}, TIMEOUT_S)
    assert long["ok"] and short["ok"]
    event = await asyncio.wait_for(fired.get(), 5)
    assert event["label"] == "eggs"
    listed = await invoke(timers, {"action": "list"}, TIMEOUT_S)
    assert [t["label"] for t in listed["result"]["timers"]] == ["tea"]
    tea_id = long["result"]["set"]["id"]
    assert (await invoke(timers, {"action": "cancel", "id": tea_id}, TIMEOUT_S))["ok"]
    again = await invoke(timers, {"action": "cancel", "id": tea_id}, TIMEOUT_S)
    assert again["ok"] is False and "no timer" in again["error"]
    no_seconds = await invoke(timers, {"action": "set"}, TIMEOUT_S)
    assert no_seconds["ok"] is False and "seconds" in no_seconds["error"]
    assert (await invoke(timers, {"action": "list"}, TIMEOUT_S))["result"]["timers"] == []


async def test_world_tools(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path)
    await world.start()
    setter, getter, lister = WorldSet(world), WorldGet(world), WorldList(world)
    obs = await invoke(setter, {"key": "kitchen.light", "value": "on"}, TIMEOUT_S)
    assert obs["ok"] and obs["result"]["version"] == 1
    assert (await world.get("kitchen.light")).value == "on"  # type: ignore[union-attr]
    got = await invoke(getter, {"key": "kitchen.light"}, TIMEOUT_S)
    assert got["result"]["value"] == "on"
    missing = await invoke(getter, {"key": "garage"}, TIMEOUT_S)
    assert missing["ok"] is False and "no key" in missing["error"]
    await world.set("kitchen.temp", 21)
    await world.set("hall.light", "off")
    listed = await invoke(lister, {"prefix": "kitchen."}, TIMEOUT_S)
    assert listed["result"]["entries"] == {"kitchen.light": "on", "kitchen.temp": 21}
    bad = await invoke(setter, {"key": "no spaces", "value": 1}, TIMEOUT_S)
    assert bad["ok"] is False and "key" in bad["error"]
    await world.stop()


def test_factory_places_tools_by_config(tmp_path: Path) -> None:
    def client() -> PeerClient:
        return PeerClient(lambda: "http://127.0.0.1:9")

    edge = config_mod.build({"node": {"tier": "edge", "state_dir": str(tmp_path)},
                             "tools": {"enabled": ["calculator", "shell", "python"]}})
    agent, served = create_tools(edge, world=None, remote=client)
    assert not isinstance(agent.get("calculator"), RemoteToolProxy)
    # Heavy tools never run in-process on an edge: auto means remote there.
    assert isinstance(agent.get("shell"), RemoteToolProxy)
    assert isinstance(agent.get("python"), RemoteToolProxy)
    assert served.names() == []
    forced = config_mod.build({"node": {"tier": "edge", "state_dir": str(tmp_path)},
                               "tools": {"enabled": ["calculator"],
                                         "placement": {"calculator": "remote"}}})
    assert isinstance(create_tools(forced, world=None, remote=client)[0].get("calculator"),
                      RemoteToolProxy)
    core = config_mod.build({"node": {"tier": "core", "state_dir": str(tmp_path)},
                             "tools": {"enabled": ["calculator", "shell"]}})
    agent, served = create_tools(core, world=None, remote=client)
    assert not isinstance(agent.get("shell"), RemoteToolProxy)
    assert served.names() == ["calculator", "python", "shell"]
    bad = config_mod.build({"node": {"tier": "edge", "state_dir": str(tmp_path)},
                            "tools": {"enabled": ["shell"], "placement": {"shell": "local"}}})
    with pytest.raises(ToolConfigError, match="heavy tool"):
        create_tools(bad, world=None, remote=client)
    unknown = config_mod.build({"node": {"tier": "edge", "state_dir": str(tmp_path)},
                                "tools": {"enabled": ["teleport"]}})
    with pytest.raises(ToolConfigError, match="unknown tool 'teleport'"):
        create_tools(unknown, world=None, remote=client)
