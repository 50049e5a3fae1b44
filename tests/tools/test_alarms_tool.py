"""The timers tool's alarms ('at') and its file: an alarm survives a restart, one that came
due while the daemon was down fires late (or is dropped when too late), a bad file is
kept aside, a fired timer nobody listened to yet reaches the first listener."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appliance.tools.base import invoke
from appliance.tools.timers import LATE_S, MAX_TIMER_S, Timers
from appliance.voice.announce import said_when_fired

TIMEOUT_S = 5.0


async def call(timers: Timers, **args: Any) -> dict[str, Any]:
    return await invoke(timers, args, TIMEOUT_S)


async def test_an_alarm_rings_at_its_clock_time_and_says_it() -> None:
    timers = Timers()
    fired: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    timers.listen(fired.put_nowait)
    at = dt.datetime.now(ZoneInfo("Asia/Tokyo")) + dt.timedelta(seconds=1.5)
    made = await call(timers, action="set", at=at.isoformat(), label="call your mom")
    assert made["ok"], made
    assert 0 < made["result"]["set"]["remaining_s"] <= 1.5
    assert dt.datetime.fromisoformat(made["result"]["set"]["at"]).utcoffset() == \
        dt.timedelta(hours=9)
    event = await asyncio.wait_for(fired.get(), TIMEOUT_S)
    assert time.time() >= at.timestamp() - 0.01  # not before its time
    assert event["label"] == "call your mom" and event["at"] == made["result"]["set"]["at"]
    said = said_when_fired(event)
    assert said == f"It's {at:%-I:%M %p}: call your mom.".replace(":00 ", " ")


def test_what_is_said_when_one_fires() -> None:
    assert said_when_fired({"label": "tea", "seconds": 60}) == "Your tea timer is done."
    assert said_when_fired({"label": "alarm", "at": "2026-12-08T07:00:00+13:00"}) == \
        "It's 7 AM: your alarm."
    assert said_when_fired({"label": "alarm", "at": "2026-12-08T18:30:00+00:00"}) == \
        "It's 6:30 PM: your alarm."
    assert said_when_fired({"label": "take the bins out", "at": "2026-12-08T19:00:00"}) == \
        "It's 7 PM: take the bins out."


async def test_bad_alarms_are_refused_by_name() -> None:
    timers = Timers(timezone="Europe/Berlin")
    past = await call(timers, action="set", at="2020-01-01T07:00:00+00:00")
    assert past["ok"] is False and "has passed" in past["error"]
    far = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=MAX_TIMER_S + 60)
    too_far = await call(timers, action="set", at=far.isoformat())
    assert too_far["ok"] is False and "more than a week" in too_far["error"]
    garbage = await call(timers, action="set", at="tomorrow at 7")
    assert garbage["ok"] is False and "not an ISO 8601" in garbage["error"]
    both = await call(timers, action="set", at=far.isoformat(), seconds=5)
    assert both["ok"] is False and "not both" in both["error"]
    assert (await call(timers, action="list"))["result"]["timers"] == []
    # Without an offset the time is the node's timezone's, on that day.
    local = dt.datetime.now(ZoneInfo("Europe/Berlin")).replace(tzinfo=None) + \
        dt.timedelta(hours=2)
    made = await call(timers, action="set", at=local.isoformat(timespec="seconds"))
    assert made["ok"], made
    at = dt.datetime.fromisoformat(made["result"]["set"]["at"])
    assert at.replace(tzinfo=None) == local.replace(microsecond=0)
    assert at.utcoffset() == local.replace(tzinfo=ZoneInfo("Europe/Berlin")).utcoffset()
    assert made["result"]["set"]["label"] == "alarm"
    timers.suspend()


async def test_alarms_and_timers_survive_a_restart(tmp_path: Path) -> None:
    kept = tmp_path / "state" / "timers.json"
    first = Timers(kept)
    first.resume()  # no file yet: nothing to do
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).replace(microsecond=0)
    alarm = (await call(first, action="set", at=at.isoformat(), label="alarm"))["result"]["set"]
    tea = (await call(first, action="set", seconds=600, label="tea"))["result"]["set"]
    gone = (await call(first, action="set", seconds=900, label="eggs"))["result"]["set"]
    assert (await call(first, action="cancel", id=gone["id"]))["ok"]
    first.suspend()  # the daemon stops: the file keeps them
    assert {t["label"] for t in json.loads(kept.read_text())["timers"]} == {"alarm", "tea"}

    second = Timers(kept)
    second.resume()
    listed = {t["label"]: t for t in (await call(second, action="list"))["result"]["timers"]}
    assert set(listed) == {"alarm", "tea"}
    assert listed["alarm"]["id"] == alarm["id"] and listed["alarm"]["at"] == at.isoformat()
    assert 0 < listed["tea"]["remaining_s"] <= 600
    assert abs(listed["alarm"]["remaining_s"] - (at.timestamp() - time.time())) < 5
    # A new one takes a fresh id, not one in use or cancelled.
    new = (await call(second, action="set", seconds=60))["result"]["set"]
    assert new["id"] > max(alarm["id"], tea["id"], gone["id"])
    second.suspend()


async def test_one_that_came_due_while_down_fires_late_or_is_dropped(tmp_path: Path) -> None:
    kept = tmp_path / "timers.json"
    now = time.time()
    kept.write_text(json.dumps({"next_id": 5, "timers": [
        {"id": 3, "label": "alarm", "due": now - 120, "seconds": 3600,
         "at": "2026-12-08T07:00:00+00:00"},
        {"id": 4, "label": "laundry", "due": now - LATE_S - 60, "seconds": 600, "at": ""}]}))
    timers = Timers(kept)
    timers.resume()
    # Nobody listens yet (the voice loads after the tools): the first listener hears it.
    await asyncio.sleep(0)
    heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    timers.listen(heard.put_nowait)
    event = await asyncio.wait_for(heard.get(), TIMEOUT_S)
    assert event["id"] == 3 and event["at"] == "2026-12-08T07:00:00+00:00"
    assert heard.empty()
    assert (await call(timers, action="list"))["result"]["timers"] == []
    # The late one fired, the older one was dropped; ids go on from the file's.
    assert json.loads(kept.read_text()) == {"next_id": 5, "timers": []}
    timers.suspend()


async def test_an_unreadable_file_is_kept_aside(tmp_path: Path) -> None:
    kept = tmp_path / "timers.json"
    kept.write_text('[{"id": "x"}')
    timers = Timers(kept)
    timers.resume()
    assert (tmp_path / "timers.json.unreadable").read_text() == '[{"id": "x"}'
    assert (await call(timers, action="list"))["result"]["timers"] == []
    assert (await call(timers, action="set", seconds=60))["ok"]
    assert len(json.loads(kept.read_text())["timers"]) == 1
    timers.suspend()
