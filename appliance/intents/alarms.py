"""Alarms and reminders at a clock time: set, cancel (by time, by what to remember, the
only one, all), list, stop and snooze the one that just rang.

"wake me up at 7", "set an alarm for 6:30 tomorrow", "remind me at 5 pm to call mom",
"wake me up every weekday at 7" (the days read by :mod:`appliance.intents.repeats`).
The time is read by :mod:`appliance.intents.clocktimes` against the clock tool's now,
and the timers tool keeps it as an alarm (``at``, in the box's timezone, kept across a
restart; ``repeat``, its days). Cancelling a repeating alarm for a day named ("cancel
tomorrow's alarm", "skip the alarm on Friday") leaves out that day only. Countdown timers
are :mod:`appliance.intents.timers`' and are not touched here; an alarm is a timer with
an ``at``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from appliance.intents import alarm_request, clock, clocktimes, repeats, speech, timers
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
    if repeat is not None and repeat.half:  # "every night at 10": 10 PM
        when = clocktimes.moment(f"{said} {repeat.half}", now, turn.lang.words,
                                 turn.lang.numbers)
    when = when or clocktimes.moment(said, now, turn.lang.words, turn.lang.numbers,
                                     waking=waking, daytime=bool(name))
    if when is None:
        return None  # not a clock time: "set an alarm for 10 minutes" is a timer's
    name = speech.person(turn.lang, name)[:100]
    days = list(repeat.days) if repeat else []
    found = await _alarms(turn, now)
    if isinstance(found, str):
        return found
    for alarm in found.alarms:
        if alarm["label"] == (name or ALARM) and alarm.get("repeat", []) == days and (
                _local(alarm, now) == when or
                (days and _local(alarm, now).time() == when.time())):
            key = "reminder_exists" if name else \
                "alarm_exists_repeat" if days else "alarm_exists"
            return turn.lang.say(key, **_fields(turn, alarm, now))
    key = "reminder_set" if name else "alarm_set"
    return await _set(turn, when, name or ALARM, now, f"{key}_repeat" if days else key, days)


async def _set(turn: Turn, when: dt.datetime, label: str, now: dt.datetime, key: str,
               days: list[str] | None = None) -> str:
    args: dict[str, Any] = {"action": "set", "at": _at(when, now), "label": label}
    if days:
        args["repeat"] = days
    observation = await turn.call("timers", args)
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    return turn.lang.say(key, **_fields(turn, observation["result"]["set"], now))


async def cancel(match: Match, turn: Turn) -> str | None:
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    alarms, now = found.alarms, found.now
    if match.slots.get("stopping") and not match.said.get("when") and found.rang:
        # "turn off the alarm" while (or just after) it rings: that one, not the next.
        return await _dismiss(turn) or turn.lang.say("alarm_stopped")
    said = match.said.get("when", "")
    if match.slots.get("skip"):  # "don't wake me up tomorrow": the wake-up alarms
        alarms = [a for a in alarms if a["label"] == ALARM]
        day = clocktimes.day(said, now, turn.lang.words) if said else None
        if day is not None:
            return await _skip_day(turn, [a for a in alarms if _rings_on(a, day, now)], day, now)
    selected = _select(turn, match, alarms, now)
    if isinstance(selected, str) or selected is None:
        return selected
    chosen, day = selected
    if chosen.get("repeat") and (day is not None or match.slots.get("skip")):
        return await _skip(turn, chosen, day, now)  # "cancel tomorrow's alarm": that day
    observation = await turn.call("timers", {"action": "cancel", "id": chosen["id"]})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    key = "alarm_cancelled" if chosen["label"] == ALARM else "reminder_cancelled"
    return turn.lang.say(f"{key}_repeat" if chosen.get("repeat") and chosen["label"] == ALARM
                         else key, **_fields(turn, chosen, now))


async def _skip_day(turn: Turn, alarms: list[dict[str, Any]], day: dt.date,
                    now: dt.datetime) -> str:
    """No wake-up alarm on ``day``: each repeating one leaves it out, a one-off one is
    cancelled."""
    said = _on_day(turn, day, now)
    if not alarms:
        return turn.lang.say("alarm_not_found", when=said)
    if len(alarms) == 1 and alarms[0].get("repeat"):
        return await _skip(turn, alarms[0], day, now)
    for alarm in alarms:
        args = {"action": "skip", "id": alarm["id"], "on": day.isoformat()} \
            if alarm.get("repeat") else {"action": "cancel", "id": alarm["id"]}
        observation = await turn.call("timers", args)
        if not observation["ok"]:
            return turn.lang.say("tool_failed", problem=observation["error"])
    if len(alarms) == 1:
        return turn.lang.say("alarm_cancelled", **_fields(turn, alarms[0], now))
    return turn.lang.say("alarm_skipped_all", on_day=said)


def _on_day(turn: Turn, day: dt.date, now: dt.datetime) -> str:
    """"today", "tomorrow", "on Friday", "on next Monday"."""
    said = _day(turn, dt.datetime.combine(day, dt.time(12)), now.replace(tzinfo=None))
    if (day - now.date()).days in (0, 1):
        return said
    return str(turn.lang.words["alarm_on_day"]).format(day=said)


async def _skip(turn: Turn, alarm: dict[str, Any], day: dt.date | None,
                now: dt.datetime) -> str:
    """Leave out one day of a repeating alarm: ``day``, or its next."""
    args: dict[str, Any] = {"action": "skip", "id": alarm["id"]}
    if day is not None:
        args["on"] = day.isoformat()
    observation = await turn.call("timers", args)
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    result = observation["result"]
    key = "alarm_skipped" if alarm["label"] == ALARM else "reminder_skipped"
    return turn.lang.say(key, **_fields(turn, result["timer"], now),
                         on_day=_on_day(turn, dt.date.fromisoformat(result["skipped"]), now))


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
    if match.said.get("when"):  # "do I have an alarm for tomorrow"
        day = clocktimes.day(match.said["when"], now, turn.lang.words)
        if day is None:
            return None
        alarms = sorted((a for a in alarms if _rings_on(a, day, now)),
                        key=lambda a: _local(a, now).time())
        if not alarms:
            return turn.lang.say("alarm_none")
        items = [_item(turn, a, now, on=day) for a in alarms]
        key = "alarm_list_one" if len(items) == 1 else "alarm_list"
        return turn.lang.say(key, count=len(items), items=turn.lang.join(items))
    if not alarms:
        return turn.lang.say("alarm_none")
    if match.slots.get("next"):
        # The kind asked for when there is one: "my next alarm" is not a reminder.
        kind = match.slots.get("kind")
        alarms = [a for a in alarms if (a["label"] == ALARM) == (kind == "alarm")] or alarms
        key = "alarm_next" if alarms[0]["label"] == ALARM else "reminder_next"
        first = alarms[0]
        return turn.lang.say(key, item=_item(turn, first, now, on=_local(first, now).date()))
    items = [_item(turn, a, now) for a in alarms]
    key = "alarm_list_one" if len(items) == 1 else "alarm_list"
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


def _select(turn: Turn, match: Match, alarms: list[dict[str, Any]], now: dt.datetime
            ) -> tuple[dict[str, Any], dt.date | None] | str | None:
    """The one alarm the request means and the day named for it if any; an answer saying
    why there is none; None when the words said are no clock time ("turn off the smoke
    alarm" is not ours)."""
    said = match.said.get("when", "")
    times: set[dt.datetime] = set()
    table = turn.lang.words["clock_times"]
    repeat, left = repeats.find(repeats.words(said), table, turn.lang.words["weekdays"])
    if repeat is not None and repeat.days:  # "cancel the weekday alarm", "... every day at 7"
        alarms = [a for a in alarms if a.get("repeat") == list(repeat.days)]
        said = " ".join(left)
        if not alarms:
            return turn.lang.say("alarm_not_found", when=match.said["when"])
    if said:
        # "the 6:30 alarm" is the one at 6:30 AM or PM, "tomorrow at 7" the one then first.
        waking = bool(match.slots.get("morning"))
        readings = (said,) if waking else (said, f"{said} am", f"{said} pm")
        times = {t for text in readings if (t := clocktimes.moment(
            text, now, turn.lang.words, turn.lang.numbers, waking=waking)) is not None}
        if not times and clocktimes.day(said, now, turn.lang.words) is None:
            return None
    if not alarms:
        return turn.lang.say("alarm_none")
    # The days the words name ("Monday" said on a Monday: today's or next week's).
    days = [t.date() for t in sorted(times)] if times else \
        clocktimes.days_named(said, now, turn.lang.words)
    kind = match.slots.get("kind")  # "the alarm": a wake-up alarm if one is meant
    if said and not times:  # "cancel the alarm for tomorrow": the one on that day
        on = [[a for a in alarms if _rings_on(a, d, now)] for d in days]
        alarms = next((found for found in on if _of_kind(found, kind)),
                      next((found for found in on if found), []))
        if not alarms:
            return turn.lang.say("alarm_not_found", when=said)
    elif said:
        # A repeating alarm's next time may be another day's than the one named.
        hours = {(t.hour, t.minute) for t in times}
        if not clocktimes.days_named(said, now, turn.lang.words):
            days = []
        alarms = [a for a in alarms if _local(a, now) in times] or \
            [a for a in alarms if (_local(a, now).hour, _local(a, now).minute) in hours
             and (not days or any(_rings_on(a, d, now) for d in days))]
        if not alarms:
            return turn.lang.say("alarm_not_found", when=said)
    elif match.said.get("name"):
        # Its words in any order: "take out the bins" is "take the bins out".
        name = speech.person(turn.lang, match.said["name"])
        alarms = [a for a in alarms if a["label"] != ALARM
                  and timers.words(turn, name) <= timers.words(turn, a["label"])]
        if not alarms:
            return turn.lang.say("reminder_not_found", name=name)
    alarms = _of_kind(alarms, kind) or alarms
    if len(alarms) == 1 or (alarms and match.slots.get("next")):
        # "skip the next alarm": the soonest
        return alarms[0], next((d for d in days if _rings_on(alarms[0], d, now)), None)
    return turn.lang.say("alarm_which", count=len(alarms),
                         items=turn.lang.join([_item(turn, a, now) for a in alarms]))


def _of_kind(alarms: list[dict[str, Any]], kind: str | None) -> list[dict[str, Any]]:
    """The wake-up alarms (``kind`` "alarm") or the reminders among ``alarms``; all of
    them for no kind."""
    return [a for a in alarms if kind is None or (a["label"] == ALARM) == (kind == "alarm")]


def _local(alarm: dict[str, Any], now: dt.datetime) -> dt.datetime:
    """The alarm's (next) time as the clock shows it in ``now``'s timezone (naive)."""
    return dt.datetime.fromisoformat(alarm["at"]).astimezone(now.tzinfo).replace(tzinfo=None)


def _rings_on(alarm: dict[str, Any], day: dt.date, now: dt.datetime) -> bool:
    """Whether the alarm rings on ``day``: its next time's day, or a later one of its
    days that it does not leave out."""
    first = _local(alarm, now).date()
    if not alarm.get("repeat") or day <= first:
        return day == first
    return repeats.DAYS[day.weekday()] in alarm["repeat"] and \
        day.isoformat() not in alarm.get("skip", [])


def _day(turn: Turn, when: dt.datetime, now: dt.datetime) -> str:
    """"today", "tomorrow", "Friday", "next Monday" (a week from today); the midnight that
    ends today is "tonight"'s."""
    days = (when.date() - now.date()).days
    if days == 1 and (when.hour, when.minute) == (0, 0):
        return str(turn.lang.words["alarm_tonight"])
    if days in (0, 1):
        return str(turn.lang.words["alarm_days"][days])
    name = speech.weekday(turn.lang, when)
    return turn.lang.words["alarm_next_week"].format(weekday=name) if days >= 7 else name


def _fields(turn: Turn, alarm: dict[str, Any], now: dt.datetime) -> dict[str, str]:
    when = _local(alarm, now)
    return {"time": speech.hour_said(turn.lang, when),
            "day": _day(turn, when, now.replace(tzinfo=None)), "name": alarm["label"],
            "every": _every(turn, alarm.get("repeat", []))}


def _every(turn: Turn, days: list[str]) -> str:
    """"every day", "every weekday", "every Monday and Thursday"."""
    words = turn.lang.words
    if len(days) == 7:
        return str(words["repeat_every_day"])
    if days == list(repeats.DAYS[:5]):
        return str(words["repeat_weekdays"])
    names = [str(words["weekdays"][repeats.DAYS.index(d)]) for d in days]
    return str(words["repeat_days"]).format(days=turn.lang.join(names))


def _item(turn: Turn, alarm: dict[str, Any], now: dt.datetime,
          on: dt.date | None = None) -> str:
    """"tomorrow at 7 AM", "every weekday at 7 AM"; ``on``: the one on that day."""
    fields = _fields(turn, alarm, now)
    repeating = bool(alarm.get("repeat")) and on is None
    if on is not None:
        fields["day"] = _day(turn, dt.datetime.combine(on, _local(alarm, now).time()),
                             now.replace(tzinfo=None))
    key = "alarm_item" if alarm["label"] == ALARM else "reminder_item"
    return turn.lang.answers[f"{key}_repeat" if repeating else key].format(**fields)


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "AlarmSet": (start, ("clock", "timers")),
    "AlarmCancel": (cancel, ("clock", "timers")),
    "AlarmCancelAll": (cancel_all, ("clock", "timers")),
    "AlarmList": (listing, ("clock", "timers")),
    "AlarmSnooze": (snooze, ("clock", "timers")),
}
