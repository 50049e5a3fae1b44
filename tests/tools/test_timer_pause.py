"""The timers tool's 'pause' and 'resume': a paused countdown keeps its seconds left and
does not fire, runs on from there when resumed, is kept paused in the file across a
restart (however long the daemon was down), takes more time while paused; an alarm and a
timer that is not there are refused by name."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from appliance.tools.base import invoke
from appliance.tools.timers import LATE_S, Timers


async def call(timers: Timers, **args: Any) -> dict[str, Any]:
    return await invoke(timers, args, 5.0)


async def test_a_paused_timer_waits_and_runs_on_when_resumed() -> None:
    timers = Timers()
    fired: dict[str, asyncio.Event] = {"tea": asyncio.Event(), "egg": asyncio.Event()}
    fired_at: dict[str, float] = {}

    def heard(event: dict[str, Any]) -> None:
        fired_at[event["label"]] = time.monotonic()
        fired[event["label"]].set()

    timers.listen(heard)
    tea = (await call(timers, action="set", seconds=1.0, label="tea"))["result"]["set"]
    await call(timers, action="set", seconds=1.5, label="egg")
    paused = await call(timers, action="pause", id=tea["id"])
    assert paused["ok"], paused
    assert paused["result"]["paused"]["paused"] is True
    # The egg timer, set after it for longer, fires; the paused tea timer has not.
    await asyncio.wait_for(fired["egg"].wait(), 10.0)
    assert not fired["tea"].is_set()
    listed = (await call(timers, action="list"))["result"]["timers"]
    assert [t["label"] for t in listed] == ["tea"] and listed[0]["paused"] is True
    assert 0.9 <= listed[0]["remaining_s"] <= 1.0
    # Paused again: no change, no error.
    assert (await call(timers, action="pause", id=tea["id"]))["result"]["paused"][
        "remaining_s"] == listed[0]["remaining_s"]
    resumed_at = time.monotonic()
    out = await call(timers, action="resume", id=tea["id"])
    assert out["ok"] and "paused" not in out["result"]["resumed"], out
    await asyncio.wait_for(fired["tea"].wait(), 10.0)
    # It ran the second it had left from the resume on, not from when it was set.
    assert fired_at["tea"] - resumed_at >= 0.85
    timers.suspend()


async def test_paused_in_the_file_across_a_restart(tmp_path: Path) -> None:
    kept = tmp_path / "timers.json"
    timers = Timers(kept)
    pizza = (await call(timers, action="set", seconds=600, label="pizza"))["result"]["set"]
    await call(timers, action="pause", id=pizza["id"])
    left = (await call(timers, action="list"))["result"]["timers"][0]["remaining_s"]
    timers.suspend()
    data = json.loads(kept.read_text())
    assert abs(data["timers"][0]["paused"] - left) < 0.1
    # The daemon was down for hours: a running timer would be dropped, a paused one waits.
    data["timers"][0]["due"] -= 3 * LATE_S
    kept.write_text(json.dumps(data))
    again = Timers(kept)
    again.resume()
    listed = (await call(again, action="list"))["result"]["timers"]
    assert len(listed) == 1 and listed[0]["paused"] is True
    assert abs(listed[0]["remaining_s"] - left) < 0.2
    # More time while paused: it stays paused, with more left.
    grown = (await call(again, action="extend", id=pizza["id"], by=60))["result"]["extended"]
    assert grown["paused"] is True and abs(grown["remaining_s"] - (left + 60)) < 0.2
    resumed = (await call(again, action="resume", id=pizza["id"]))["result"]["resumed"]
    assert "paused" not in resumed and left + 59 <= resumed["remaining_s"] <= left + 60.1
    assert "paused" not in json.loads(kept.read_text())["timers"][0]
    again.suspend()


async def test_pause_refuses_an_alarm_and_a_missing_timer(tmp_path: Path) -> None:
    timers = Timers(tmp_path / "timers.json")
    at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 7200))
    alarm = (await call(timers, action="set", at=at))["result"]["set"]
    refused = await call(timers, action="pause", id=alarm["id"])
    assert not refused["ok"] and "is an alarm" in refused["error"], refused
    refused = await call(timers, action="resume", id=42)
    assert not refused["ok"] and "no timer with id 42" in refused["error"], refused
    refused = await call(timers, action="pause")
    assert not refused["ok"] and "'pause' needs 'id'" in refused["error"], refused
    timers.suspend()


async def test_a_file_with_a_bad_pause_is_set_aside(tmp_path: Path) -> None:
    kept = tmp_path / "timers.json"
    for bad in (-5, "soon", 10 ** 9):
        kept.write_text(json.dumps({"next_id": 2, "timers": [
            {"id": 1, "label": "tea", "due": time.time() + 60, "seconds": 60, "at": "",
             "paused": bad}]}))
        timers = Timers(kept)
        timers.resume()
        assert (await call(timers, action="list"))["result"]["timers"] == [], bad
        assert (tmp_path / "timers.json.unreadable").exists()
        (tmp_path / "timers.json.unreadable").unlink()
        timers.suspend()
