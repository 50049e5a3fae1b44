""""set my alarm for 6:30" and the like through the real matcher, the real clock tool and
the real timers tool: the wake-up alarm there is is moved, not set beside it; with none
a new one is set; with several that repeat, which is asked."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.intents.component import Intents
from appliance.tools.alarm_days import DAYS
from appliance.tools.timers import Timers
from tests.intents.test_alarms import alarms, local
from tests.intents.test_answers import say

WEEKDAYS = list(DAYS[:5])


@pytest.mark.parametrize(("text", "hour", "minute"), [
    ("set my weekday alarm for 6:30", 6, 30),
    ("set my alarm for 6:30", 6, 30),
    ("change my wake up time to 6:30", 6, 30),
    ("set my wake up time to 6:30", 6, 30),
    ("set my morning alarm to 7", 7, 0),
    ("set my wake-up call for 5:45", 5, 45),
])
async def test_my_alarm_is_moved(intents: Intents, timers: Timers, text: str, hour: int,
                                 minute: int) -> None:
    await say(intents, "wake me up every weekday at 6")
    await say(intents, "remind me at 5 pm to call mum")  # a reminder is no wake-up alarm
    intent, answer = await say(intents, text)
    when = dt.time(hour, minute).strftime("%-I:%M %p").replace(":00 ", " ")
    assert answer == f"OK, your alarm is now every weekday at {when}.", (intent, answer)
    [alarm] = [a for a in await alarms(timers) if a["label"] == "alarm"]
    assert alarm["repeat"] == WEEKDAYS and local(alarm).time() == dt.time(hour, minute)


async def test_a_one_off_alarm_is_moved_on_its_day(intents: Intents, timers: Timers) -> None:
    await say(intents, "set an alarm for 8 tomorrow")
    [old] = await alarms(timers)
    assert (await say(intents, "set my alarm for 8:30"))[1].startswith("OK, your alarm is now ")
    [new] = await alarms(timers)
    assert local(new).date() == local(old).date() and local(new).time() == dt.time(8, 30)


async def test_a_new_alarm_when_there_is_none_to_move(intents: Intents,
                                                      timers: Timers) -> None:
    assert (await say(intents, "set my alarm for 6:30"))[1].startswith("Alarm set for ")
    [alarm] = await alarms(timers)
    assert "repeat" not in alarm and local(alarm).time() == dt.time(6, 30)
    # "a new alarm", "an alarm": beside it.
    assert (await say(intents, "set a new alarm for 7 am"))[0] == "AlarmSet"
    assert (await say(intents, "set an alarm for 7:30 am"))[0] == "AlarmSet"
    assert len(await alarms(timers)) == 3
    # No weekday alarm to move: one is set, the one-off ones stay.
    answer = (await say(intents, "set my weekday alarm for 6"))[1]
    assert answer.startswith("Alarm set for every weekday at 6 AM, starting "), answer
    assert len(await alarms(timers)) == 4
    # A few one-off ones are a morning's run of alarms: "my alarm" adds one.
    await say(intents, "cancel the weekday alarm")
    assert (await say(intents, "set my alarm for 5:30"))[1].startswith("Alarm set for ")
    assert len(await alarms(timers)) == 4


@pytest.mark.parametrize(("text", "repeat"), [
    ("set my alarm for 6:30 tomorrow", None),
    ("set my alarm for 7 every weekday", WEEKDAYS),
])
async def test_a_time_with_its_own_days_is_a_new_alarm(intents: Intents, timers: Timers,
                                                       text: str,
                                                       repeat: list[str] | None) -> None:
    """The one there is stays: tomorrow's 6:30 is not every day's."""
    await say(intents, "wake me up every day at 6")
    assert (await say(intents, text))[1].startswith("Alarm set for "), text
    made = {(local(a).strftime("%H:%M"), tuple(a.get("repeat") or ()))
            for a in await alarms(timers)}
    assert ("06:00", tuple(DAYS)) in made and len(made) == 2, made
    assert any(tuple(repeat or ()) == days for _, days in made - {("06:00", tuple(DAYS))})


async def test_which_of_my_alarms_is_asked(intents: Intents, timers: Timers) -> None:
    await say(intents, "wake me up every weekday at 7")
    await say(intents, "set an alarm for 9 on weekends")
    before = [(a["id"], a["at"]) for a in await alarms(timers)]
    intent, answer = await say(intents, "set my alarm for 6:30")
    assert intent == "AlarmChange" and answer.startswith("You have 2 alarms: ") and \
        answer.endswith(". Which one?"), answer
    assert "every weekday at 7 AM" in answer and "every Saturday and Sunday at 9 AM" in answer
    assert [(a["id"], a["at"]) for a in await alarms(timers)] == before
    # The days said choose.
    assert (await say(intents, "set my weekend alarm for 10"))[1] == \
        "OK, your alarm is now every Saturday and Sunday at 10 AM."
    assert sorted((a["repeat"], local(a).hour) for a in await alarms(timers)) == \
        [(["mon", "tue", "wed", "thu", "fri"], 7), (["sat", "sun"], 10)]
