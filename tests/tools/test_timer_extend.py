"""The timers tool's 'extend': more (or less) time on a running countdown, the same timer
(its id), its length grown with it, kept in the file; refused for an alarm, for a timer
that is not there, and for more time off than is left."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from appliance.tools.base import invoke
from appliance.tools.timers import Timers


async def call(timers: Timers, **args: Any) -> dict[str, Any]:
    return await invoke(timers, args, 5.0)


async def test_extend_a_countdown(tmp_path: Path) -> None:
    kept = tmp_path / "timers.json"
    timers = Timers(kept)
    tea = (await call(timers, action="set", seconds=300, label="tea"))["result"]["set"]
    out = await call(timers, action="extend", id=tea["id"], by=120)
    assert out["ok"], out
    grown = out["result"]["extended"]
    assert grown["id"] == tea["id"] and grown["seconds"] == 420
    assert 418 < grown["remaining_s"] <= 420
    assert json.loads(kept.read_text())["timers"][0]["seconds"] == 420
    less = (await call(timers, action="extend", id=tea["id"], by=-400))["result"]["extended"]
    assert less["seconds"] == 20 and 18 < less["remaining_s"] <= 20
    # More off than is left, an alarm, a timer not there: refused by name, nothing changed.
    refused = await call(timers, action="extend", id=tea["id"], by=-30)
    assert not refused["ok"] and "left" in refused["error"], refused
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat(timespec="seconds")
    alarm = (await call(timers, action="set", at=at))["result"]["set"]
    refused = await call(timers, action="extend", id=alarm["id"], by=60)
    assert not refused["ok"] and "is an alarm" in refused["error"], refused
    refused = await call(timers, action="extend", id=99, by=60)
    assert not refused["ok"] and "no timer with id 99" in refused["error"], refused
    listed = {t["label"]: t for t in (await call(timers, action="list"))["result"]["timers"]}
    assert listed["tea"]["seconds"] == 20 and listed["alarm"]["at"] == alarm["at"]
    timers.suspend()


async def test_a_shortened_timer_fires_at_its_new_end() -> None:
    timers = Timers()
    fired = asyncio.Event()
    timers.listen(lambda event: fired.set())
    tea = (await call(timers, action="set", seconds=600, label="tea"))["result"]["set"]
    assert (await call(timers, action="extend", id=tea["id"], by=-598.5))["ok"]
    await asyncio.wait_for(fired.wait(), 10.0)
    assert (await call(timers, action="list"))["result"]["timers"] == []
    timers.suspend()
