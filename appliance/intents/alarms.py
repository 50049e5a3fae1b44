"""Alarms and reminders at a clock time: set, cancel (by time, by what to remember, the
only one, all), list, stop and snooze the one that just rang.

"wake me up at 7", "set an alarm for 6:30 tomorrow", "remind me at 5 pm to call mom",
"wake me up every weekday at 7" (the days read by :mod:`appliance.intents.repeats`).
The time is read by :mod:`appliance.intents.clocktimes` against the clock tool's now,
and the timers tool keeps it as an alarm (``at``, in the box's timezone, kept across a
restart; ``repeat``, its days). Cancelling a repeating alarm for a day named ("cancel
tomorrow's alarm", "skip the alarm on Friday") leaves out that day only; "don't wake me up
this weekend" its Saturday and Sunday (:mod:`appliance.intents.alarm_weekend`). Countdown
timers are :mod:`appliance.intents.timers`' and are not touched here; an alarm is a timer
with an ``at``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from appliance.intents import (
    alarm_mine,
    alarm_request,
    alarm_select,
    alarm_weekend,
    clock,
    clocktimes,
    repeats,
    speech,
    timers,
)
from appliance.intents import alarm_said as told
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn
from appliance.tools.timers import ALARM_LABEL as ALARM

#: A snooze without a length.
SNOOZE_MINUTES = 9


def _at(when: dt.datetime, now: dt.datetime) -> str:
    """The alarm's ``at``: with the offset the clock's timezone has on that day."""
    return clock.aware(when, now).isoformat(timespec="seconds")


async def start(match: Match, turn: Turn) -> str | None:
    if not match.said.get("when"):
        return None
    reading = alarm_request.read(turn, match)
    if not isinstance(reading, alarm_request.Reading):
        return reading
    said, name, repeat = reading.when, reading.name, reading.repeat
    now = await clock.zoned_now(turn)
    if isinstance(now, str):
        return now
    # A repeating wake-up alarm is the morning's unless its days say otherwise.
    waking = bool(match.slots.get("morning")) or bool(repeat and not name and not repeat.half)
    when = None
    if repeat is not None and repeat.half:  # "every night at 10": 10 PM; "... at 1": 1 AM
        half = turn.lang.words["clock_times"]["repeating"]["halves"][repeat.half]
        when = clocktimes.moment(f"{said} {half}", now, turn.lang.words, turn.lang.numbers,
                                 repeating=True)
    when = when or clocktimes.moment(said, now, turn.lang.words, turn.lang.numbers,
                                     waking=waking, daytime=bool(name),
                                     repeating=repeat is not None)
    if when is None:  # gone today ("10 pm tonight" at 10:30 PM), or not a clock time
        gone = clocktimes.gone(said, now, turn.lang.words, turn.lang.numbers, waking=waking,
                               daytime=bool(name))
        if gone is not None and repeat is None:
            return turn.lang.say("alarm_gone", time=speech.hour_said(turn.lang, gone),
                                 now=speech.clock_time(turn.lang, now))
        return None  # "set an alarm for 10 minutes" is a timer's
    name = speech.person(turn.lang, name, yours=False)[:100]
    days = list(repeat.days) if repeat else []
    if days and len(days) < 7 and when.hour < 5 and "night" in said.lower().split():
        # "every Friday night at 1": Saturday's small hours
        days = [d for d in repeats.DAYS if repeats.DAYS[repeats.DAYS.index(d) - 1] in days]
    found = await _alarms(turn, now)
    if isinstance(found, str):
        return found
    for alarm in found.alarms:
        if _same(alarm, when, name or ALARM, days, now):
            key = "reminder_exists" if name else "alarm_exists"
            return turn.lang.say(f"{key}_repeat" if alarm.get("repeat") else key,
                                 **told.fields(turn, alarm, now))
    key = "reminder_set" if name else "alarm_set"
    return await _set(turn, when, name or ALARM, now, f"{key}_repeat" if days else key, days)


def _same(alarm: dict[str, Any], when: dt.datetime, label: str, days: list[str],
          now: dt.datetime) -> bool:
    """Whether ``alarm`` is the one asked for, or a repeating one that rings then ("wake
    me up tomorrow at 7" with an alarm every day at 7)."""
    if alarm["label"] != label or told.local(alarm, now).time() != when.time():
        return False
    if alarm.get("repeat", []) == days:
        return bool(days) or told.local(alarm, now) == when
    return not days and told.rings_on(alarm, when.date(), now)


def _set_args(when: dt.datetime, label: str, now: dt.datetime,
              days: list[str] | None = None) -> dict[str, Any]:
    """The timers tool's ``set`` of an alarm at ``when`` (on ``days``, if any)."""
    args: dict[str, Any] = {"action": "set", "at": _at(when, now), "label": label}
    if days:  # the clock time as said, in the box's timezone: 2:30 stays 2:30 every day
        args["at"], args["repeat"] = when.isoformat(timespec="seconds"), days
    return args


async def _set(turn: Turn, when: dt.datetime, label: str, now: dt.datetime, key: str,
               days: list[str] | None = None) -> str:
    observation = await turn.call("timers", _set_args(when, label, now, days))
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    return turn.lang.say(key, **told.fields(turn, observation["result"]["set"], now))


async def cancel(match: Match, turn: Turn) -> str | None:
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    alarms, now = found.alarms, found.now
    said, kind = told.courteous(turn, match.said.get("when", "")), match.slots.get("kind")
    if match.slots.get("by_name"):
        name = timers.timer_name(turn, match)
        if not name:  # "cancel that reminder": the one just set, else "the reminder"
            reminders = told.of_kind(alarms, "reminder")
            just = [a for a in reminders if a["id"] == turn.just_set()]
            if just:
                return await cancel_one(turn, just[0], now)
            if not reminders:
                return turn.lang.say("reminder_none")  # never the wake-up alarm
            alarms = reminders
            match = Match(match.intent, {"kind": "reminder"}, {"kind": "reminder"})
        elif not _a_reminder(turn, name, alarms, now):
            return None  # "cancel tomorrow's reminder" (a day), "the next reminder"
    if not said and not match.said.get("name") and found.rang and kind != "reminder" \
            and not match.slots.get("skip"):
        # "turn off the alarm", "cancel the alarm" while (or just after) it rings: that
        # one, not the next (nor every day of a repeating one).
        return await _dismiss(turn) or turn.lang.say("alarm_stopped")
    weekend = alarm_weekend.days(said, now, turn.lang.words) if said else None
    if weekend is not None:  # "don't wake me up this weekend", "cancel my alarms this
        kind = kind or "alarm"  # weekend": Saturday and Sunday left out
        return await alarm_weekend.skip(turn, told.of_kind(alarms, kind), weekend, now, kind)
    if match.slots.get("days_only") and clocktimes.day(said, now, turn.lang.words) is None:
        return None  # "cancel the alarms at 7": no day
    if match.slots.get("skip"):  # "don't wake me up tomorrow": the wake-up alarms
        kind = kind or "alarm"
        alarms = told.of_kind(alarms, kind)
        if said and clocktimes.day(said, now, turn.lang.words) is not None:
            # "on Friday" said on a Friday after its ring: next Friday's.
            days = clocktimes.days_named(said, now, turn.lang.words)
            meant = next((d for d in days if any(told.rings_on(a, d, now) or
                                                 told.off_on(a, d, now) for a in alarms)),
                         days[0])
            return await _skip_day(turn, alarms, meant, now, kind)
    selected = alarm_select.select(turn, match, alarms, now)
    if isinstance(selected, str) or selected is None:
        return selected
    chosen, day = selected
    if chosen.get("repeat") and (day is not None or match.slots.get("skip")):
        return await _skip(turn, chosen, day, now)  # "cancel tomorrow's alarm": that day
    return await cancel_one(turn, chosen, now)


async def cancel_one(turn: Turn, chosen: dict[str, Any], now: dt.datetime) -> str:
    """Cancel the alarm or reminder ``chosen`` (every day of a repeating one)."""
    observation = await turn.call("timers", {"action": "cancel", "id": chosen["id"]})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    key = "alarm_cancelled" if chosen["label"] == ALARM else "reminder_cancelled"
    return turn.lang.say(f"{key}_repeat" if chosen.get("repeat") and chosen["label"] == ALARM
                         else key, **told.fields(turn, chosen, now))


def _a_reminder(turn: Turn, words: str, alarms: list[dict[str, Any]], now: dt.datetime
                ) -> bool:
    """Whether ``words`` ("the laundry reminder") name a reminder set, and no day, clock
    time or days of the week ("the tomorrow reminder")."""
    table = turn.lang.words
    if clocktimes.day(words, now, table) is not None or clocktimes.moment(
            words, now, table, turn.lang.numbers) is not None or \
            repeats.adjective(repeats.words(words), table["clock_times"]):
        return False
    return any(a["label"] != ALARM and timers.alike(turn, words, a["label"]) for a in alarms)


async def _skip_day(turn: Turn, alarms: list[dict[str, Any]], day: dt.date,
                    now: dt.datetime, kind: str) -> str:
    """None of ``alarms`` (of ``kind``) on ``day``: each repeating one leaves it out, a
    one-off one is cancelled."""
    noun, said = kind if kind == "reminder" else "alarm", told.on_day(turn, day, now)
    off = [a for a in alarms if told.off_on(a, day, now)]
    alarms = [a for a in alarms if told.rings_on(a, day, now)]
    if not alarms:
        return turn.lang.say(f"{noun}_already_off" if off else f"{noun}_not_found_on_day",
                             on_day=said)
    if len(alarms) == 1 and alarms[0].get("repeat"):
        return await _skip(turn, alarms[0], day, now)
    for alarm in alarms:
        args = {"action": "skip", "id": alarm["id"], "on": day.isoformat()} \
            if alarm.get("repeat") else {"action": "cancel", "id": alarm["id"]}
        observation = await turn.call("timers", args)
        if not observation["ok"]:
            return turn.lang.say("tool_failed", problem=observation["error"])
    if len(alarms) == 1:
        return turn.lang.say(f"{noun}_cancelled", **told.fields(turn, alarms[0], now))
    return turn.lang.say(f"{noun}_skipped_all", on_day=said)


async def _skip(turn: Turn, alarm: dict[str, Any], day: dt.date | None,
                now: dt.datetime) -> str:
    """Leave out one day of a repeating alarm: ``day``, or its next."""
    noun = "alarm" if alarm["label"] == ALARM else "reminder"
    if day is not None and told.off_on(alarm, day, now):
        return turn.lang.say(f"{noun}_already_off", on_day=told.on_day(turn, day, now))
    args: dict[str, Any] = {"action": "skip", "id": alarm["id"]}
    if day is not None:
        args["on"] = day.isoformat()
    observation = await turn.call("timers", args)
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    result = observation["result"]
    return turn.lang.say(f"{noun}_skipped", **told.fields(turn, result["timer"], now),
                         on_day=told.on_day(turn, dt.date.fromisoformat(result["skipped"]), now))


async def change(match: Match, turn: Turn) -> str | None:
    """"change my alarm to 6:30", "move the 7 am alarm to 7:30", "move my weekday alarm
    to 6:30": the same alarm (its days, its words) at the new time; a one-off one on its
    own day unless another is named. "set my alarm for 6:30" (``setting``) moves the
    wake-up alarm there is, or sets one (:mod:`appliance.intents.alarm_mine`)."""
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    alarms, now = found.alarms, found.now
    which = Match(match.intent, dict(match.slots),
                  {"when": match.said.get("from") or match.said.get("repeat", "")})
    if match.slots.get("setting"):  # "set my alarm for 6:30": the one there is, or a new one
        mine = alarm_mine.candidates(turn, match, alarms, now)
        if mine is None or alarm_mine.new(mine):
            return None if mine is None else await start(alarm_mine.as_set(match), turn)
        alarms, which = mine, alarm_mine.which(match)
    selected = alarm_select.select(turn, which, alarms, now)
    if isinstance(selected, str) or selected is None:
        return selected
    old, days = selected[0], selected[0].get("repeat", [])
    said = match.said.get("when", "")
    when = clocktimes.moment(said, now, turn.lang.words, turn.lang.numbers,
                             waking=old["label"] == ALARM, daytime=old["label"] != ALARM,
                             repeating=bool(days))
    if when is None:
        return None
    moved = dt.datetime.combine(told.local(old, now).date(), when.time())
    if not days and not clocktimes.days_named(said, now, turn.lang.words) and \
            moved > now.replace(tzinfo=None):
        when = moved  # "move tomorrow's alarm to 8": tomorrow at 8
    # The new one first: a failure leaves the old one set.
    made = await turn.call("timers", _set_args(when, old["label"], now, days))
    if not made["ok"]:
        return turn.lang.say("tool_failed", problem=made["error"])
    for day in old.get("skip") or []:  # the days it left out stay left out
        skipped = await turn.call("timers", {"action": "skip", "id": made["result"]["set"]["id"],
                                             "on": day})
        if skipped["ok"]:
            made["result"]["set"] = skipped["result"]["timer"]
    gone = await turn.call("timers", {"action": "cancel", "id": old["id"]})
    if not gone["ok"]:
        return turn.lang.say("tool_failed", problem=gone["error"])
    key = "alarm_changed" if old["label"] == ALARM else "reminder_changed"
    return turn.lang.say(f"{key}_repeat" if days else key,
                         **told.fields(turn, made["result"]["set"], now))


async def cancel_all(match: Match, turn: Turn) -> str | None:
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    alarms = found.alarms
    reminders = match.slots.get("kinds") == "reminder"
    if reminders:  # "cancel my reminders" leaves the wake-up alarms
        alarms = [a for a in alarms if a["label"] != ALARM]
    if not alarms:
        return turn.lang.say("reminder_none" if reminders else "alarm_none")
    failed = await timers.cancel_each(turn, alarms)
    if failed:
        return failed
    key = "reminder_cancelled_all" if reminders else "alarm_cancelled_all"
    return turn.lang.say(f"{key}_one" if len(alarms) == 1 else key, count=len(alarms))


async def snooze(match: Match, turn: Turn) -> str | None:
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    if not found.rang:
        return turn.lang.say("alarm_not_ringing")
    minutes = timers.seconds_of(match.slots) / 60 or SNOOZE_MINUTES
    failed = await _dismiss(turn)
    if failed:
        return failed
    now = found.now
    when = clock.shifted(now, dt.timedelta(minutes=minutes)).replace(tzinfo=None, microsecond=0)
    return await _set(turn, when, found.rang[-1]["label"], now, "alarm_snoozed")


async def _dismiss(turn: Turn) -> str | None:
    """Stop the ringing; None, or the answer saying why it could not be."""
    observation = await turn.call("timers", {"action": "dismiss"})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    return None


async def listing(match: Match, turn: Turn) -> str | None:
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    alarms, now = found.alarms, found.now
    reminders = match.slots.get("kinds") == "reminder"
    if reminders:  # "what reminders do I have": not the wake-up alarms
        alarms = told.of_kind(alarms, "reminder")
    if match.said.get("when"):  # "do I have an alarm for tomorrow"
        day = clocktimes.day(match.said["when"], now, turn.lang.words)
        if day is None:
            return None
        on = sorted((a for a in alarms if told.rings_on(a, day, now)),
                    key=lambda a: told.local(a, now).time())
        if not on:
            off = [speech.hour_said(turn.lang, told.local(a, now)) for a in alarms
                   if day.isoformat() in a.get("skip", [])]
            return turn.lang.say("reminder_none_on_day" if reminders else "alarm_off_on_day"
                                 if off else "alarm_none_on_day",
                                 on_day=told.on_day(turn, day, now), times=turn.lang.join(off))
        items = [told.item(turn, a, now, on=day) for a in on]
        key = ("reminder" if reminders or all(a["label"] != ALARM for a in on) else "alarm") \
            + ("_list_one" if len(items) == 1 else "_list")
        return turn.lang.say(key, count=len(items), items=turn.lang.join(items))
    if not alarms:
        return turn.lang.say("reminder_none" if reminders else "alarm_none")
    if match.slots.get("next"):
        # The kind asked for when there is one: "my next alarm" is not a reminder.
        kind = match.slots.get("kind")
        alarms = [a for a in alarms if (a["label"] == ALARM) == (kind == "alarm")] or alarms
        key = "alarm_next" if alarms[0]["label"] == ALARM else "reminder_next"
        first = alarms[0]
        return turn.lang.say(key, item=told.item(turn, first, now,
                                                 on=told.local(first, now).date()))
    items = [told.item(turn, a, now) for a in alarms]
    reminders = reminders or all(a["label"] != ALARM for a in alarms)  # said as they are
    key = ("reminder" if reminders else "alarm") + ("_list_one" if len(items) == 1 else "_list")
    return turn.lang.say(key, count=len(items), items=turn.lang.join(items))


@dataclass(frozen=True)
class _Alarms:
    alarms: list[dict[str, Any]]
    """The alarms set, soonest first."""
    now: dt.datetime
    rang: list[dict[str, Any]]
    """The alarms that rang in the last minutes and were not yet stopped or snoozed."""


async def _alarms(turn: Turn, now: dt.datetime | None = None) -> _Alarms | str:
    """The alarms as the timers tool has them, and now; or the answer saying why they are
    not known."""
    if now is None:
        found = await clock.zoned_now(turn)
        if isinstance(found, str):
            return found
        now = found
    observation = await turn.call("timers", {"action": "list"})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    result = observation["result"]
    alarms = [t for t in result["timers"] if t.get("at")]
    return _Alarms(sorted(alarms, key=lambda t: t["remaining_s"]), now,
                   list(result.get("rang") or []))


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "AlarmSet": (start, ("clock", "timers")),
    "AlarmCancel": (cancel, ("clock", "timers")),
    "AlarmCancelAll": (cancel_all, ("clock", "timers")),
    "AlarmList": (listing, ("clock", "timers")),
    "AlarmSnooze": (snooze, ("clock", "timers")),
    "AlarmChange": (change, ("clock", "timers")),
}
