"""Repeating alarms and reminders through the real matcher, the real clock tool (in the
tests' timezone) and the real timers tool: the days and the time meant, what is said
back, listing, leaving out a day, cancelling. The days are checked against the clock
read on either side of the call (the test may run across a midnight)."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.intents.component import Intents
from appliance.tools.alarm_days import DAYS
from appliance.tools.timers import Timers
from tests.intents.test_alarms import ZONE, alarms, local
from tests.intents.test_answers import say

WEEKDAYS = list(DAYS[:5])
EVERY_DAY = list(DAYS)


@pytest.mark.parametrize(("text", "days", "hour", "minute", "label"), [
    ("wake me up every weekday at 7", WEEKDAYS, 7, 0, "alarm"),
    ("set an alarm for 6:30 every day", EVERY_DAY, 6, 30, "alarm"),  # the morning's
    ("set an alarm for 9 on weekends", ["sat", "sun"], 9, 0, "alarm"),
    ("wake me up at 7 every morning", EVERY_DAY, 7, 0, "alarm"),
    ("Set an alarm every Monday, Wednesday and Friday at 5:45 am.", ["mon", "wed", "fri"],
     5, 45, "alarm"),
    ("wake me up Monday to Friday at 6", WEEKDAYS, 6, 0, "alarm"),
    ("set an alarm for 7 am on Mondays", ["mon"], 7, 0, "alarm"),
    ("wake me up every week on Sunday at 9", ["sun"], 9, 0, "alarm"),
    ("set a weekday alarm for 6:30", WEEKDAYS, 6, 30, "alarm"),
    ("daily alarm at 8", EVERY_DAY, 8, 0, "alarm"),
    ("remind me every night at 10 to take my pills", EVERY_DAY, 22, 0, "take your pills"),
    ("remind me at 8 pm to water the plants every Monday and Thursday", ["mon", "thu"],
     20, 0, "water the plants"),
    ("set a daily reminder at 8 pm to take my pills", EVERY_DAY, 20, 0, "take your pills"),
    ("remind me to put the bins out every Tuesday at 7 pm", ["tue"], 19, 0,
     "put the bins out"),
])
async def test_the_days_and_time_meant(intents: Intents, timers: Timers, text: str,
                                       days: list[str], hour: int, minute: int,
                                       label: str) -> None:
    before = dt.datetime.now(ZONE)
    intent, answer = await say(intents, text)
    [made] = await alarms(timers)
    first = local(made)
    assert intent == "AlarmSet" and made["repeat"] == days, (answer, made)
    assert (first.hour, first.minute, made["label"]) == (hour, minute, label), answer
    # The first ring is the first of its days to come at that time.
    assert before < first <= before + dt.timedelta(days=7)
    assert DAYS[first.weekday()] in days
    assert not any(DAYS[(before + dt.timedelta(days=n)).weekday()] in days and
                   before < dt.datetime.combine((before + dt.timedelta(days=n)).date(),
                                                first.time(), tzinfo=ZONE) < first
                   for n in range(7))
    every = {tuple(EVERY_DAY): "every day", tuple(WEEKDAYS): "every weekday"}.get(
        tuple(days), "every ")
    assert every in answer and ", starting " in answer, answer


def weekday_name(day: dt.date) -> str:
    return f"{day:%A}"


async def test_list_skip_and_cancel(intents: Intents, timers: Timers) -> None:
    assert (await say(intents, "wake me up every day at 7"))[0] == "AlarmSet"
    assert (await say(intents, "what alarms do I have"))[1] == "One alarm: every day at 7 AM."
    assert (await say(intents, "wake me up every day at 7"))[1] == \
        "There's already an alarm every day at 7 AM."
    # A day named is left out; the others stay.
    before = dt.datetime.now(ZONE).date()
    intent, answer = await say(intents, "skip tomorrow's alarm")
    today = dt.datetime.now(ZONE).date()
    [alarm] = await alarms(timers)
    assert intent == "AlarmCancel" and answer.startswith("OK, no alarm tomorrow. The next "), \
        answer
    assert alarm["repeat"] == EVERY_DAY and any(
        (day + dt.timedelta(days=1)).isoformat() in alarm["skip"] for day in (before, today))
    later = today + dt.timedelta(days=3)
    assert (await say(intents, "do I have any alarms tomorrow"))[1] == "There are no alarms set."
    assert (await say(intents, f"do I have any alarms on {weekday_name(later)}"))[1] == \
        f"One alarm: {weekday_name(later)} at 7 AM."
    intent, answer = await say(intents, f"cancel the alarm for {weekday_name(later)}")
    assert answer.startswith(f"OK, no alarm on {weekday_name(later)}. "), answer
    [alarm] = await alarms(timers)
    assert later.isoformat() in alarm["skip"]
    # Said with a time and no day: the alarm on every day.
    assert (await say(intents, "cancel the 7 am alarm"))[1] == \
        "Cancelled the alarm every day at 7 AM."
    assert await alarms(timers) == []


async def test_no_alarms_on_a_day_and_the_next_skipped(intents: Intents,
                                                      timers: Timers) -> None:
    await say(intents, "wake me up every day at 7")
    await say(intents, "set an alarm for 6:30 every day")
    await say(intents, "remind me every day at 9 pm to take my pills")
    before = dt.datetime.now(ZONE).date()
    intent, answer = await say(intents, "don't wake me up tomorrow")
    assert (intent, answer) == ("AlarmCancel", "OK, no alarms tomorrow.")
    [tomorrow] = {a["skip"][0] for a in await alarms(timers) if a.get("skip")}
    assert tomorrow in {(before + dt.timedelta(days=n)).isoformat() for n in (1, 2)}
    skipped = {a["label"] + local(a).strftime(" %H:%M"): a.get("skip", [])
               for a in await alarms(timers)}
    # The wake-up alarms, not the reminder.
    assert skipped == {"alarm 07:00": [tomorrow], "alarm 06:30": [tomorrow],
                       "take your pills 21:00": []}
    # "skip the next alarm": the soonest wake-up alarm's next ring.
    soonest = min((a for a in await alarms(timers) if a["label"] == "alarm"),
                  key=lambda a: a["remaining_s"])
    intent, answer = await say(intents, "skip the next alarm")
    assert answer.startswith("OK, no alarm "), answer
    after = {a["id"]: a for a in await alarms(timers)}[soonest["id"]]
    assert local(after) > local(soonest) and local(soonest).date().isoformat() in after["skip"]
    # The reminder by its kind, for a day: that day only.
    intent, answer = await say(intents, "cancel the reminder for tomorrow")
    assert answer.startswith("OK, no reminder tomorrow: take your pills. The next one is "), \
        answer
    # "the weekday alarm" is the one that repeats on weekdays.
    await say(intents, "wake me up every weekday at 5")
    assert (await say(intents, "cancel the weekday alarm"))[1] == \
        "Cancelled the alarm every weekday at 5 AM."
    assert len(await alarms(timers)) == 3


async def test_a_one_off_alarm_skipped_is_cancelled(intents: Intents, timers: Timers) -> None:
    await say(intents, "set an alarm for tomorrow at 6:15")
    intent, answer = await say(intents, "skip tomorrow's alarm")
    assert intent == "AlarmCancel" and answer.startswith("Cancelled the alarm for "), answer
    assert await alarms(timers) == []
