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

import pytest

from appliance.tools import timer_entry
from appliance.tools import timers as timers_module
from appliance.tools.base import invoke
from appliance.tools.timers import LATE_S, MAX_ALARM_S, Timers
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
    assert said_when_fired({"label": "alarm", "at": "2026-12-08T07:00:00+13:00",
                            "late_s": 1200}) == "You had an alarm at 7 AM."
    assert said_when_fired({"label": "call mum", "at": "2026-12-08T17:00:00+00:00",
                            "late_s": 600}) == "You had a reminder at 5 PM: call mum."
    assert said_when_fired({"label": "alarm", "at": "2026-12-08T07:00:00+13:00"}) == \
        "It's 7 AM: your alarm."
    assert said_when_fired({"label": "alarm", "at": "2026-12-08T18:30:00+00:00"}) == \
        "It's 6:30 PM: your alarm."
    assert said_when_fired({"label": "take the bins out", "at": "2026-12-08T19:00:00"}) == \
        "It's 7 PM: take the bins out."
    # As the answer that set it said it.
    assert said_when_fired({"label": "alarm", "at": "2026-12-08T12:00:00+13:00"}) == \
        "It's noon: your alarm."
    assert said_when_fired({"label": "call mum", "at": "2026-12-08T00:00:00+13:00",
                            "late_s": 120}) == "You had a reminder at midnight: call mum."


async def test_bad_alarms_are_refused_by_name() -> None:
    timers = Timers(timezone="Europe/Berlin")
    past = await call(timers, action="set", at="2020-01-01T07:00:00+00:00")
    assert past["ok"] is False and "has passed" in past["error"]
    far = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=MAX_ALARM_S + 60)
    too_far = await call(timers, action="set", at=far.isoformat())
    assert too_far["ok"] is False and "more than 8 days" in too_far["error"]
    # The furthest a request names: "next Monday at 11:59 PM" said on a Monday at midnight.
    furthest = dt.datetime.now(dt.UTC) + dt.timedelta(days=7, hours=23, minutes=59)
    kept = await call(timers, action="set", at=furthest.isoformat())
    assert kept["ok"] is True, kept
    assert (await call(timers, action="cancel", id=kept["result"]["set"]["id"]))["ok"] is True
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
    # Nobody listens yet (the voice loads after the tools): it fires all the same, and the
    # first listener hears it.
    # (No event exists before a listener: the list emptying is the firing.)
    while (await call(timers, action="list"))["result"]["timers"]:  # noqa: ASYNC110
        await asyncio.sleep(0)
    heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    timers.listen(heard.put_nowait)
    event = heard.get_nowait()
    assert event["id"] == 3 and event["at"] == "2026-12-08T07:00:00+00:00"
    assert 110 <= event["late_s"] <= 180  # said as late: "You had an alarm at 7 AM."
    assert heard.empty()
    assert (await call(timers, action="list"))["result"]["timers"] == []
    # The late one fired, the older one was dropped; ids go on from the file's.
    assert json.loads(kept.read_text()) == {"next_id": 5, "timers": []}
    timers.suspend()


GOOD = {"id": 1, "label": "alarm", "due": 4e9, "seconds": 60, "at": "2096-10-02T07:00:00+00:00"}


@pytest.mark.parametrize("text", [
    '[{"id": "x"}',  # not JSON
    '[]',  # not the file's shape
    '{"next_id": 1e400, "timers": []}',  # an id too large to be one
    '{"next_id": 2, "timers": [' + json.dumps({**GOOD, "id": 10 ** 400}) + ']}',
    '{"next_id": 2, "timers": ' + "[" * 50000 + "]" * 50000 + '}',  # too deep to read
    '{"next_id": 2, "timers": [' + json.dumps({**GOOD, "due": "NaN"}) + ']}',
    '{"next_id": 2, "timers": [' + json.dumps(GOOD).replace("4000000000.0", "NaN") + ']}',
    '{"next_id": 2, "timers": [' + json.dumps({**GOOD, "at": "garbage"}) + ']}',
    '{"next_id": 2, "timers": [' + json.dumps({**GOOD, "at": "2096-10-02T07:00"}) + ']}',
    '{"next_id": 2, "timers": [' + json.dumps({**GOOD, "label": None}) + ']}',
    '{"next_id": 2, "timers": [' + json.dumps({**GOOD, "label": "x" * 101}) + ']}',
    '{"next_id": 2, "timers": [7]}',
    '\udcff'.encode("utf-8", "surrogatepass").decode("latin-1"),
])
async def test_an_unreadable_file_is_kept_aside(tmp_path: Path, text: str) -> None:
    kept = tmp_path / "timers.json"
    kept.write_text(text)
    timers = Timers(kept)
    timers.resume()  # the daemon starts all the same
    assert (tmp_path / "timers.json.unreadable").read_text() == text
    assert (await call(timers, action="list"))["result"]["timers"] == []
    assert (await call(timers, action="set", seconds=60))["ok"]
    assert len(json.loads(kept.read_text())["timers"]) == 1
    timers.suspend()


async def test_a_good_file_is_read(tmp_path: Path) -> None:
    kept = tmp_path / "timers.json"
    kept.write_text(json.dumps({"next_id": 2, "timers": [GOOD]}))
    timers = Timers(kept)
    timers.resume()
    listed = (await call(timers, action="list"))["result"]["timers"]
    assert [(t["id"], t["at"]) for t in listed] == [(1, GOOD["at"])]
    timers.suspend()


class _JumpingClock:
    """A wall clock set forward by hand (a test double: this machine's own clock is shared
    and is not stepped by a test), as NTP steps the clock of a board without a battery."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def time(self) -> float:
        return time.time() + self.ahead

    def ctime(self, seconds: float) -> str:
        return time.ctime(seconds)

    def monotonic(self) -> float:
        return time.monotonic()


async def test_a_clock_set_right_late_moves_the_alarm(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _JumpingClock()
    monkeypatch.setattr(timers_module, "time", clock)
    monkeypatch.setattr(timer_entry, "time", clock)  # a timer's own reading of the clock
    monkeypatch.setattr(timers_module, "CHECK_S", 0.05)
    timers = Timers()
    fired: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    timers.listen(fired.put_nowait)
    at = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert (await call(timers, action="set", at=at.isoformat()))["ok"]
    # A countdown runs its seconds whatever the wall clock does.
    assert (await call(timers, action="set", seconds=600, label="pasta"))["ok"]
    clock.ahead = 2 * 3600 + 5  # NTP: it is two hours later than the board thought
    event = await asyncio.wait_for(fired.get(), TIMEOUT_S)
    assert event["label"] == "alarm" and 0 <= event.get("late_s", 0) <= 60
    listed = (await call(timers, action="list"))["result"]["timers"]
    assert [t["label"] for t in listed] == ["pasta"] and 590 < listed[0]["remaining_s"] <= 600
    assert fired.empty()
    timers.suspend()


async def test_an_alarm_that_just_rang_is_listed_and_dismissed() -> None:
    timers = Timers()
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    timers.listen(events.put_nowait)
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
    await call(timers, action="set", at=at.isoformat())
    await call(timers, action="set", seconds=0.2, label="tea")  # a timer is no alarm
    assert (await asyncio.wait_for(events.get(), TIMEOUT_S))["label"] == "tea"
    assert (await asyncio.wait_for(events.get(), TIMEOUT_S))["label"] == "alarm"
    listed = (await call(timers, action="list"))["result"]
    assert listed["timers"] == [] and [e["label"] for e in listed["rang"]] == ["alarm"]
    assert 0 <= listed["rang"][0]["ago_s"] <= 5
    dismissed = (await call(timers, action="dismiss"))["result"]["dismissed"]
    assert [e["label"] for e in dismissed] == ["alarm"]
    assert events.get_nowait() == {"dismiss": True}  # the voice stops ringing
    # Dealt with: it is no longer one that just rang (a second snooze has none to take).
    assert (await call(timers, action="list"))["result"]["rang"] == []
