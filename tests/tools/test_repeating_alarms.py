"""Repeating alarms in the timers tool ('repeat'): the first ring is on one of its days,
a ring moves it on to the next at the same clock time (across daylight saving changes
too), 'skip' leaves out one day, the file keeps them, and one missed while the daemon
was down moves on instead of being dropped."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from appliance.tools.alarm_days import DAYS, next_ring
from appliance.tools.base import ToolError, invoke
from appliance.tools.timers import LATE_S, Timers

TIMEOUT_S = 5.0
TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")
EVERY_DAY = list(DAYS)


async def call(timers: Timers, **args: Any) -> dict[str, Any]:
    return await invoke(timers, args, TIMEOUT_S)


def local(iso: str, zone: dt.tzinfo = TOKYO) -> dt.datetime:
    return dt.datetime.fromisoformat(iso).astimezone(zone)


async def test_it_rings_and_moves_on_to_its_next_day(tmp_path: Path) -> None:
    timers = Timers(tmp_path / "timers.json", timezone="Asia/Tokyo")
    fired: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    timers.listen(fired.put_nowait)
    soon = (dt.datetime.now(TOKYO) + dt.timedelta(seconds=1.5)).replace(microsecond=0)
    made = await call(timers, action="set", at=soon.replace(tzinfo=None).isoformat(),
                      repeat=EVERY_DAY)
    assert made["ok"], made
    assert made["result"]["set"]["repeat"] == EVERY_DAY
    event = await asyncio.wait_for(fired.get(), TIMEOUT_S)
    assert time.time() >= soon.timestamp() - 0.01
    assert local(event["at"]) == soon and event["repeat"] == EVERY_DAY
    # Still set, the same id, tomorrow at the same clock time; the file says so too.
    [again] = (await call(timers, action="list"))["result"]["timers"]
    assert again["id"] == made["result"]["set"]["id"]
    assert local(again["at"]) == soon + dt.timedelta(days=1)
    assert 86300 < again["remaining_s"] <= 86400
    [kept] = json.loads((tmp_path / "timers.json").read_text())["timers"]
    assert kept["at"] == again["at"] and kept["repeat"] == EVERY_DAY
    # Cancelled, it is gone on every day.
    assert (await call(timers, action="cancel", id=again["id"]))["ok"]
    assert (await call(timers, action="list"))["result"]["timers"] == []
    timers.suspend()


async def test_set_kept_and_read_back(tmp_path: Path) -> None:
    """A fraction of a second in 'at' (valid ISO) is kept, and the file written is read
    back on the next start (it was set aside as unreadable)."""
    timers = Timers(tmp_path / "timers.json", timezone="Asia/Tokyo")
    tomorrow = dt.datetime.now(TOKYO).date() + dt.timedelta(days=1)
    made = await call(timers, action="set", at=f"{tomorrow}T06:30:00.500", repeat=EVERY_DAY)
    assert made["ok"], made
    timers.suspend()
    again = Timers(tmp_path / "timers.json", timezone="Asia/Tokyo")
    again.resume()
    [kept] = (await call(again, action="list"))["result"]["timers"]
    assert (kept["id"], kept["repeat"]) == (made["result"]["set"]["id"], EVERY_DAY)
    assert local(kept["at"]).replace(microsecond=0).time() == dt.time(6, 30)
    assert json.loads((tmp_path / "timers.json").read_text())["timers"][0]["clock"] == \
        "06:30:00.500000"
    assert not (tmp_path / "timers.json.unreadable").exists()
    again.suspend()


async def test_the_first_ring_is_on_one_of_its_days() -> None:
    timers = Timers(timezone="Asia/Tokyo")
    today = dt.datetime.now(TOKYO).date()
    seven = dt.datetime.combine(today, dt.time(7, 0))
    # Only on the day three days on: 'at' today moves to it.
    day = DAYS[(today + dt.timedelta(days=3)).weekday()]
    made = await call(timers, action="set", at=seven.isoformat(), repeat=[day])
    assert local(made["result"]["set"]["at"]).replace(tzinfo=None) == \
        seven + dt.timedelta(days=3)
    # Every day from a time already past: the next 7 o'clock to come.
    gone = await call(timers, action="set", at=(seven - dt.timedelta(days=1)).isoformat(),
                      repeat=EVERY_DAY, label="take the pills")
    first = local(gone["result"]["set"]["at"])
    assert first.time() == dt.time(7, 0) and first > dt.datetime.now(TOKYO)
    assert first - dt.datetime.now(TOKYO) <= dt.timedelta(days=1)
    timers.suspend()


def test_it_keeps_its_clock_time_across_daylight_saving_changes() -> None:
    spring = dt.datetime(2027, 3, 27, 7, 0, tzinfo=BERLIN)  # the change is on the 28th
    after = next_ring(spring, tuple(DAYS), (), spring.timestamp() + 1, BERLIN)
    assert after == dt.datetime(2027, 3, 28, 7, 0, tzinfo=BERLIN)
    assert after.timestamp() - spring.timestamp() == 23 * 3600
    autumn = dt.datetime(2026, 10, 24, 7, 0, tzinfo=BERLIN)
    after = next_ring(autumn, tuple(DAYS), (), autumn.timestamp() + 1, BERLIN)
    assert after.timestamp() - autumn.timestamp() == 25 * 3600
    # A clock time the spring change skips rings at the same moment an hour on would,
    # and at its own clock time the day after (the clock time is kept apart).
    skipped = dt.datetime(2027, 3, 27, 2, 30, tzinfo=BERLIN)
    ring = next_ring(skipped, tuple(DAYS), (), skipped.timestamp() + 1, BERLIN, "02:30:00")
    assert ring.astimezone(dt.UTC) == dt.datetime(2027, 3, 28, 1, 30, tzinfo=dt.UTC)
    after = next_ring(ring, tuple(DAYS), (), ring.timestamp() + 1, BERLIN, "02:30:00")
    assert after == dt.datetime(2027, 3, 29, 2, 30, tzinfo=BERLIN)
    # Weekdays: Friday's ring moves to Monday; a Monday skipped, to Tuesday.
    friday = dt.datetime(2026, 12, 11, 7, 0, tzinfo=BERLIN)
    weekdays = DAYS[:5]
    assert next_ring(friday, weekdays, (), friday.timestamp() + 1, BERLIN).date() == \
        dt.date(2026, 12, 14)
    assert next_ring(friday, weekdays, ("2026-12-14",), friday.timestamp() + 1,
                     BERLIN).date() == dt.date(2026, 12, 15)
    with pytest.raises(ToolError, match="never rings"):
        next_ring(friday, (), (), friday.timestamp(), BERLIN)


async def test_skip_leaves_out_one_day() -> None:
    timers = Timers(timezone="Asia/Tokyo")
    tomorrow = dt.datetime.now(TOKYO).date() + dt.timedelta(days=1)
    seven = dt.datetime.combine(tomorrow, dt.time(7, 0))
    made = (await call(timers, action="set", at=seven.isoformat(),
                       repeat=EVERY_DAY))["result"]["set"]
    skipped = await call(timers, action="skip", id=made["id"])
    assert skipped["ok"], skipped
    assert skipped["result"]["skipped"] == tomorrow.isoformat()
    assert local(skipped["result"]["timer"]["at"]).date() == tomorrow + dt.timedelta(days=1)
    # A later day too; the next ring stays, the list shows both left out.
    later = tomorrow + dt.timedelta(days=3)
    assert (await call(timers, action="skip", id=made["id"], on=later.isoformat()))["ok"]
    [listed] = (await call(timers, action="list"))["result"]["timers"]
    assert listed["skip"] == [tomorrow.isoformat(), later.isoformat()]
    assert local(listed["at"]).date() == tomorrow + dt.timedelta(days=1)
    # What cannot be skipped is named.
    again = await call(timers, action="skip", id=made["id"], on=later.isoformat())
    assert again["ok"] is False and "already left out on" in again["error"]
    before = (tomorrow - dt.timedelta(days=2)).isoformat()
    assert "does not ring on" in (await call(timers, action="skip", id=made["id"],
                                             on=before))["error"]
    far = tomorrow + dt.timedelta(days=40)
    assert "more than 35 days" in (await call(timers, action="skip", id=made["id"],
                                              on=far.isoformat()))["error"]
    assert "not a date" in (await call(timers, action="skip", id=made["id"],
                                       on="friday"))["error"]
    once = (await call(timers, action="set", at=seven.isoformat()))["result"]["set"]
    assert "does not repeat" in (await call(timers, action="skip", id=once["id"]))["error"]
    assert "needs 'id'" in (await call(timers, action="skip"))["error"]
    timers.suspend()


async def test_bad_repeats_are_refused_by_name() -> None:
    timers = Timers(timezone="Asia/Tokyo")
    no_time = await call(timers, action="set", seconds=60, repeat=["mon"])
    assert no_time["ok"] is False and "'repeat' needs 'at'" in no_time["error"]
    for repeat in ([], ["monday"], ["mon", "mon"]):
        bad = await call(timers, action="set", at="2026-12-08T07:00:00", repeat=repeat)
        assert bad["ok"] is False and "repeat" in bad["error"], (repeat, bad)
    far = await call(timers, action="set", at="9999-12-31T07:00:00", repeat=["mon"])
    assert far["ok"] is False and "more than 8 days away" in far["error"]
    assert (await call(timers, action="list"))["result"]["timers"] == []


async def test_one_late_by_less_than_an_hour_rings_then_moves_on(tmp_path: Path) -> None:
    kept = tmp_path / "timers.json"
    late = dt.datetime.fromtimestamp(time.time() - 600, TOKYO).replace(microsecond=0)
    kept.write_text(json.dumps({"next_id": 2, "timers": [
        {"id": 1, "label": "alarm", "due": late.timestamp(), "seconds": 60,
         "at": late.isoformat(), "repeat": EVERY_DAY, "skip": [],
         "clock": late.time().isoformat()}]}))
    timers = Timers(kept, timezone="Asia/Tokyo")
    heard: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    timers.listen(heard.put_nowait)
    timers.resume()
    event = await asyncio.wait_for(heard.get(), TIMEOUT_S)
    assert 590 <= event["late_s"] <= 700 and local(event["at"]) == late
    [moved] = (await call(timers, action="list"))["result"]["timers"]
    assert local(moved["at"]) == late + dt.timedelta(days=1)
    timers.suspend()


async def test_one_missed_while_down_moves_on(tmp_path: Path) -> None:
    kept = tmp_path / "timers.json"
    now = time.time()
    missed = dt.datetime.fromtimestamp(now - LATE_S - 3600, TOKYO).replace(microsecond=0)
    kept.write_text(json.dumps({"next_id": 2, "timers": [
        {"id": 1, "label": "alarm", "due": missed.timestamp(), "seconds": 60,
         "at": missed.isoformat(), "repeat": EVERY_DAY, "skip": []}]}))
    timers = Timers(kept, timezone="Asia/Tokyo")
    heard: list[dict[str, Any]] = []
    timers.listen(heard.append)
    timers.resume()
    [moved] = (await call(timers, action="list"))["result"]["timers"]
    assert local(moved["at"]) == missed + dt.timedelta(days=1) and heard == []
    assert json.loads(kept.read_text())["timers"][0]["at"] == moved["at"]
    timers.suspend()


GOOD = {"id": 1, "label": "alarm", "due": 4e9, "seconds": 60,
        "at": "2096-10-02T07:00:00+00:00", "repeat": ["mon", "fri"], "skip": ["2096-10-05"],
        "clock": "07:00:00"}


@pytest.mark.parametrize("changed", [
    {"repeat": ["monday"]}, {"repeat": ["mon", "mon"]}, {"repeat": "mon"},
    {"repeat": [["mon"]]}, {"repeat": [{}]},  # not even hashable
    {"repeat": ["mon"], "at": ""}, {"skip": ["friday"]}, {"skip": "2096-10-05"},
    {"skip": ["2096-10-05"] * 17}, {"skip": ["2096-10-05", "2096-10-05"]},
    {"skip": ["2096-W40-1"]}, {"skip": [["2096-10-05"]]},
    {"clock": "7am"}, {"clock": "25:00:00"}, {"clock": 7},
])
async def test_a_bad_repeat_in_the_file_is_kept_aside(tmp_path: Path,
                                                      changed: dict[str, Any]) -> None:
    kept = tmp_path / "timers.json"
    text = json.dumps({"next_id": 2, "timers": [{**GOOD, **changed}]})
    kept.write_text(text)
    timers = Timers(kept)
    timers.resume()
    assert (tmp_path / "timers.json.unreadable").read_text() == text
    assert (await call(timers, action="list"))["result"]["timers"] == []


async def test_a_good_repeat_in_the_file_is_read(tmp_path: Path) -> None:
    kept = tmp_path / "timers.json"
    kept.write_text(json.dumps({"next_id": 2, "timers": [GOOD]}))
    timers = Timers(kept)
    timers.resume()
    [listed] = (await call(timers, action="list"))["result"]["timers"]
    assert (listed["repeat"], listed["skip"]) == (["mon", "fri"], ["2096-10-05"])
    timers.suspend()
