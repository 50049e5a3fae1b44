""""don't wake me up this weekend" through the real matcher, the real clock tool and the
real timers tool: the coming Saturday and Sunday are left out of each wake-up alarm that
rings then. The alarms are late in the evening, so each rings on every day of the weekend
still to come whatever the hour the test runs at; the days are worked out from the clock
read on either side of the call."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.intents import alarm_weekend
from appliance.intents.component import Intents
from appliance.intents.language import load
from appliance.intents.turn import Turn
from appliance.tools.timers import Timers
from tests.intents.test_alarms import ZONE, alarms, local
from tests.intents.test_answers import say


def weekend(today: dt.date) -> list[dt.date]:
    """This weekend's days from today on."""
    if today.weekday() == 6:
        return [today]
    saturday = today + dt.timedelta(days=5 - today.weekday())
    return [saturday, saturday + dt.timedelta(days=1)]


def said(days: list[dt.date], today: dt.date) -> str:
    words = [{0: "today", 1: "tomorrow"}.get((d - today).days, f"{d:%A}") for d in days]
    return ("" if words[0] in ("today", "tomorrow") else "on ") + " and ".join(words)


@pytest.mark.parametrize("text", [
    "don't wake me up this weekend",
    "no alarm this weekend",
    "skip the alarm this weekend",
])
async def test_no_alarms_this_weekend(intents: Intents, timers: Timers, text: str) -> None:
    await say(intents, "set an alarm for 11:59 pm every day")
    await say(intents, "set an alarm for 11:58 pm on weekends")
    await say(intents, "wake me up every weekday at 6")
    await say(intents, "remind me every day at 11:57 pm to take my pills")
    await say(intents, "set an alarm for 11:56 pm on Sunday")  # a one-off one: cancelled
    before = dt.datetime.now(ZONE).date()
    intent, answer = await say(intents, text)
    after = dt.datetime.now(ZONE).date()
    days = weekend(after)
    assert intent == "AlarmCancel" and answer in {
        f"OK, no alarms {said(weekend(d), d)}." for d in (before, after)}, answer
    left = {f"{local(a):%H:%M}": a.get("skip", []) for a in await alarms(timers)}
    out = [d.isoformat() for d in days]
    assert left == {"23:59": out, "23:58": out, "06:00": [], "23:57": []}, left
    # Said again: already off.
    assert (await say(intents, text))[1].startswith("That alarm is already off "), text


async def test_no_reminders_this_weekend(intents: Intents, timers: Timers) -> None:
    await say(intents, "remind me every day at 11:57 pm to take my pills")
    await say(intents, "set an alarm for 11:59 pm every day")
    intent, answer = await say(intents, "don't remind me this weekend")
    days = weekend(dt.datetime.now(ZONE).date())
    assert intent == "AlarmCancel" and answer.startswith(
        f"OK, no reminder {said(days, dt.datetime.now(ZONE).date())}: take your pills. "
        "The next one is "), answer
    left = {a["label"]: a.get("skip", []) for a in await alarms(timers)}
    assert left == {"take your pills": [d.isoformat() for d in days], "alarm": []}, left


async def test_no_alarm_this_weekend_to_leave_out(intents: Intents, timers: Timers) -> None:
    await say(intents, "set an alarm for 11:56 pm on Sunday")
    answer = (await say(intents, "no alarm this weekend"))[1]
    assert answer.startswith("Cancelled the alarm for ") and answer.endswith(" at 11:56 PM."), \
        answer
    await say(intents, "wake me up every weekday at 6")
    assert (await say(intents, "don't wake me up this weekend"))[1].startswith(
        "There's no alarm "), "nothing rings on the weekend"
    assert "skip" not in (await alarms(timers))[0]


def test_the_weekend_meant_on_each_day() -> None:
    """Said on each day of a week: its Saturday and Sunday still to come, said back."""
    turn = Turn.__new__(Turn)
    turn.lang = load("en")
    monday = dt.datetime(2026, 12, 7, 9, 0, tzinfo=ZONE)
    out = []
    for n in range(7):
        now = monday + dt.timedelta(days=n)
        days = alarm_weekend.days("the weekend", now, turn.lang.words)
        assert days == weekend(now.date())
        out.append(alarm_weekend.on_days(turn, days, now))
    assert out == ["on Saturday and Sunday"] * 4 + ["tomorrow and Sunday", "today and tomorrow",
                                                    "today"]
    assert alarm_weekend.days("every weekend", monday, turn.lang.words) is None
    assert alarm_weekend.days("tomorrow", monday, turn.lang.words) is None
