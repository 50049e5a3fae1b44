"""Repeating alarms and reminders through the real matcher, the real clock tool (in the
tests' timezone) and the real timers tool: the days and the time meant, what is said
back, listing, leaving out a day, cancelling. The days are checked against the clock
read on either side of the call (the test may run across a midnight)."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from appliance.intents import alarm_said
from appliance.intents.component import Intents
from appliance.intents.language import load
from appliance.intents.turn import Turn
from appliance.tools.alarm_days import DAYS
from appliance.tools.base import invoke
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
    # From the review: "a.m." as Whisper writes it, hassil's split at "to", the time at the
    # end of the words, "every night" after midnight, and a reminder's hour read as on a
    # day named whatever the hour it is said at.
    ("wake me up at 7 a.m. every weekday", WEEKDAYS, 7, 0, "alarm"),
    ("remind me at 8 p.m. every day to take my vitamins", EVERY_DAY, 20, 0,
     "take your vitamins"),
    ("remind me at ten to eight every weekday to leave for school", WEEKDAYS, 7, 50,
     "leave for school"),
    ("remind me every Monday to put the bins out at 7 pm", ["mon"], 19, 0,
     "put the bins out"),
    ("remind me every night at 12 to lock the door", EVERY_DAY, 0, 0, "lock the door"),
    ("remind me every night at 1 to check the baby", EVERY_DAY, 1, 0, "check the baby"),
    ("remind me every Saturday at 10 to mow the lawn", ["sat"], 10, 0, "mow the lawn"),
    ("remind me every day at 8 to take my vitamins", EVERY_DAY, 8, 0, "take your vitamins"),
    ("remind me every weekday at 3 to pick up the kids", WEEKDAYS, 15, 0, "pick up the kids"),
    ("remind me every friday night at 1 to check the baby", ["sat"], 1, 0, "check the baby"),
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
    names = [f"{dt.date(2026, 12, 7) + dt.timedelta(days=DAYS.index(d)):%A}" for d in days]
    said = "midnight" if (hour, minute) == (0, 0) else f"{first:%-I:%M %p}".replace(":00 ", " ")
    every = {tuple(EVERY_DAY): "every day", tuple(WEEKDAYS): "every weekday"}.get(
        tuple(days), "every " + (" and ".join(names) if len(names) < 3 else
                                 ", ".join(names[:-1]) + " and " + names[-1]))
    assert f"{every} at {said}, starting " in answer, answer


@pytest.mark.parametrize(("text", "intent"), [
    # A weekend or a day alone is one, not every one; a reminder's own words stay.
    ("wake me up at 9 this weekend", None),
    ("set a loud alarm for 7", None),
    ("remind me at 5 pm to plan the weekend", "AlarmSet"),
    ("remind me at 5 pm to read the daily mail", "AlarmSet"),
    ("set an alarm for 7 on monday", "AlarmSet"),
])
async def test_what_is_no_repeat(intents: Intents, timers: Timers, text: str,
                                 intent: str | None) -> None:
    assert (await say(intents, text))[0] == intent
    assert all("repeat" not in a for a in await alarms(timers)), text


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
    assert (await say(intents, "do I have any alarms tomorrow"))[1] == \
        "There are no alarms tomorrow: the one at 7 AM is off that day."
    assert (await say(intents, "skip tomorrow's alarm"))[1] == \
        "That alarm is already off tomorrow."
    assert (await say(intents, "what alarms do I have"))[1] == \
        "One alarm: every day at 7 AM except tomorrow."
    assert (await say(intents, f"do I have any alarms on {weekday_name(later)}"))[1] == \
        f"One alarm: {weekday_name(later)} at 7 AM."
    intent, answer = await say(intents, f"cancel the alarm for {weekday_name(later)}")
    assert answer.startswith(f"OK, no alarm on {weekday_name(later)}. "), answer
    [alarm] = await alarms(timers)
    assert later.isoformat() in alarm["skip"]
    # Said again: already off, and next week's stays.
    assert (await say(intents, f"cancel the alarm for {weekday_name(later)}"))[1] == \
        f"That alarm is already off on {weekday_name(later)}."
    assert (await alarms(timers))[0]["skip"] == alarm["skip"]
    # Listed, a day left out within the week is "this Friday" (not "every day ... except
    # Friday", which reads as every Friday).
    assert (await say(intents, "what alarms do I have"))[1] == \
        f"One alarm: every day at 7 AM except tomorrow and this {weekday_name(later)}."
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
    after = {a["id"]: a for a in await alarms(timers)}[soonest["id"]]
    assert local(after) > local(soonest) and local(soonest).date().isoformat() in after["skip"]
    said = f"{local(after):%-I:%M %p}".replace(":00 ", " ")
    assert answer.startswith("OK, no alarm ") and answer.endswith(f" at {said}."), answer
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


async def test_no_second_alarm_at_the_time_of_a_repeating_one(intents: Intents,
                                                            timers: Timers) -> None:
    await say(intents, "wake me up every day at 7")
    assert (await say(intents, "wake me up tomorrow at 7"))[1] == \
        "There's already an alarm every day at 7 AM."
    await say(intents, "remind me every day at 9 pm to take my pills")
    assert (await say(intents, "remind me every night at 9 to take my pills"))[1] == \
        "That reminder is already set: take your pills, every day at 9 PM."
    assert len(await alarms(timers)) == 2


async def test_cancel_while_it_rings_keeps_the_days(intents: Intents, timers: Timers) -> None:
    rang = asyncio.Event()
    timers.listen(lambda event: rang.set() if event.get("repeat") else None)
    soon = dt.datetime.now(ZONE) + dt.timedelta(seconds=0.3)
    assert (await invoke(timers, {"action": "set", "at": soon.isoformat(),
                                  "repeat": EVERY_DAY}, 5.0))["ok"]
    await asyncio.wait_for(rang.wait(), 5.0)
    await say(intents, "remind me at 9 pm to call mum")
    assert await say(intents, "cancel the alarm") == ("AlarmCancel", "OK.")
    [alarm, _] = sorted(await alarms(timers), key=lambda a: a["id"])
    assert local(alarm) - soon > dt.timedelta(hours=23)
    # Other requests just after it rang do what they say.
    assert (await say(intents, "cancel the reminder"))[1] == "Cancelled the reminder: call mum."
    answer = (await say(intents, "skip the next alarm"))[1]
    assert answer.startswith("OK, no alarm "), answer
    assert len((await alarms(timers))[0]["skip"]) == 1


async def test_a_reminder_left_out_for_a_day(intents: Intents, timers: Timers) -> None:
    await say(intents, "remind me every day at 9 pm to take my pills")
    await say(intents, "wake me up every day at 7")
    intent, answer = await say(intents, "don't remind me tomorrow")
    assert intent == "AlarmCancel" and answer.startswith(
        "OK, no reminder tomorrow: take your pills. The next one is "), answer
    skipped = {a["label"]: a.get("skip", []) for a in await alarms(timers)}
    assert skipped["alarm"] == [] and len(skipped["take your pills"]) == 1


def test_times_said_back() -> None:
    """A clock tool with a fixed offset (no IANA name) keeps each alarm at its own offset;
    a day over a week on is said with its date."""
    berlin = dt.datetime(2027, 3, 25, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    alarm = {"at": "2027-03-29T07:00:00+02:00", "label": "alarm"}
    assert alarm_said.local(alarm, berlin) == dt.datetime(2027, 3, 29, 7, 0)
    zoned = berlin.astimezone(ZoneInfo("Europe/Berlin"))
    assert alarm_said.local(alarm, zoned) == dt.datetime(2027, 3, 29, 7, 0)
    tokyo = berlin.astimezone(ZoneInfo("Asia/Tokyo"))
    assert alarm_said.local(alarm, tokyo) == dt.datetime(2027, 3, 29, 14, 0)
    turn = Turn.__new__(Turn)
    turn.lang = load("en")
    now = dt.datetime(2026, 12, 7, 9, 0)
    assert [alarm_said.day_said(turn, now + dt.timedelta(days=n), now)
            for n in (0, 1, 3, 7, 14)] == ["today", "tomorrow", "Thursday", "next Monday",
                                           "Monday, December 21"]


async def test_change_an_alarm(intents: Intents, timers: Timers) -> None:
    assert (await say(intents, "change my alarm to 6:30"))[1] == "There are no alarms set."
    await say(intents, "wake me up every weekday at 7")
    assert await say(intents, "change my alarm to 6:30") == \
        ("AlarmChange", "OK, your alarm is now every weekday at 6:30 AM.")
    [alarm] = await alarms(timers)
    assert alarm["repeat"] == WEEKDAYS and local(alarm).time() == dt.time(6, 30)
    # A one-off one stays on its day; which one is asked when it could be either.
    await say(intents, "set an alarm for 8 tomorrow")
    old = max(await alarms(timers), key=lambda a: a["id"])
    assert (await say(intents, "move my alarm to 6:45"))[1].endswith("Which one?")
    intent, answer = await say(intents, "move the 8 am alarm to 8:30")
    new = max(await alarms(timers), key=lambda a: a["id"])
    assert intent == "AlarmChange" and answer.endswith(" at 8:30 AM."), answer
    assert local(new).date() == local(old).date() and local(new).time() == dt.time(8, 30)
    assert (await say(intents, "move my weekday alarm to 6"))[1] == \
        "OK, your alarm is now every weekday at 6 AM."
    assert len(await alarms(timers)) == 2
    # A reminder keeps its words, at a daytime hour.
    await say(intents, "remind me at 5 pm to call mum")
    await say(intents, "cancel the weekday alarm")
    await say(intents, "cancel the 8:30 alarm")
    intent, answer = await say(intents, "change the reminder to 6")
    assert intent == "AlarmChange" and answer.endswith(" at 6 PM: call mum."), answer
    [reminder] = await alarms(timers)
    assert reminder["label"] == "call mum" and local(reminder).hour == 18
