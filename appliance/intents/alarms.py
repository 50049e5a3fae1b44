"""Alarms and reminders at a clock time: set, cancel (by time, by what to remember, the
only one, all), list.

"wake me up at 7", "set an alarm for 6:30 tomorrow", "remind me at 5 pm to call mom".
The time is read by :mod:`appliance.intents.clocktimes` against the clock tool's now,
and the timers tool keeps it as an alarm (``at``, in the box's timezone, kept across a
restart). Countdown timers are :mod:`appliance.intents.timers`' and are not touched here;
an alarm is a timer with an ``at``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.intents import clocktimes, speech, timers
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn

#: The label of an alarm with nothing to remember.
ALARM = "alarm"


async def _now(turn: Turn) -> dt.datetime | str:
    """The clock tool's now (aware), or the answer saying why it is not known."""
    observation = await turn.call("clock", {})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    result = observation["result"]
    now = dt.datetime.fromisoformat(result["iso"])
    zone = _zone(str(result.get("timezone", "")))
    return now.astimezone(zone) if zone is not None else now


def _zone(name: str) -> dt.tzinfo | None:
    """The clock's IANA timezone; None for the system's own (the timers tool reads a time
    without an offset in it, daylight saving time included)."""
    if "/" not in name and name != "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _at(when: dt.datetime, now: dt.datetime) -> str:
    """The alarm's ``at``: with the offset the clock's timezone has on that day."""
    if isinstance(now.tzinfo, ZoneInfo):
        return when.replace(tzinfo=now.tzinfo).isoformat(timespec="seconds")
    return when.isoformat(timespec="seconds")


def _moment(turn: Turn, match: Match, now: dt.datetime) -> dt.datetime | None:
    return clocktimes.moment(match.said.get("when", ""), now, turn.lang.words,
                             turn.lang.numbers, "am" if match.slots.get("morning") else None)


async def start(match: Match, turn: Turn) -> str | None:
    if not match.said.get("when"):
        return None
    now = await _now(turn)
    if isinstance(now, str):
        return now
    when = _moment(turn, match, now)
    if when is None:
        return None  # not a clock time: "set an alarm for 10 minutes" is a timer's
    name = speech.person(turn.lang, match.said.get("name", ""))[:100]
    found = await _alarms(turn, now)
    if isinstance(found, str):
        return found
    for alarm in found[0]:
        if _local(alarm) == when and alarm["label"] == (name or ALARM):
            return turn.lang.say("reminder_exists" if name else "alarm_exists",
                                 **_fields(turn, alarm, now))
    args: dict[str, Any] = {"action": "set", "at": _at(when, now), "label": name or ALARM}
    observation = await turn.call("timers", args)
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    fields = _fields(turn, observation["result"]["set"], now)
    return turn.lang.say("reminder_set" if name else "alarm_set", **fields)


async def cancel(match: Match, turn: Turn) -> str | None:
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    alarms, now = found
    chosen = _select(turn, match, alarms, now)
    if isinstance(chosen, str) or chosen is None:
        return chosen
    observation = await turn.call("timers", {"action": "cancel", "id": chosen["id"]})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    key = "alarm_cancelled" if chosen["label"] == ALARM else "reminder_cancelled"
    return turn.lang.say(key, **_fields(turn, chosen, now))


async def cancel_all(match: Match, turn: Turn) -> str | None:
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    alarms, _ = found
    if not alarms:
        return turn.lang.say("alarm_none")
    for alarm in alarms:
        observation = await turn.call("timers", {"action": "cancel", "id": alarm["id"]})
        if not observation["ok"]:
            return turn.lang.say("tool_failed", problem=observation["error"])
    if len(alarms) == 1:
        return turn.lang.say("alarm_cancelled_all_one")
    return turn.lang.say("alarm_cancelled_all", count=len(alarms))


async def listing(match: Match, turn: Turn) -> str | None:
    found = await _alarms(turn)
    if isinstance(found, str):
        return found
    alarms, now = found
    if match.said.get("when"):  # "do I have an alarm for tomorrow"
        day = clocktimes.day(match.said["when"], now, turn.lang.words)
        if day is None:
            return None
        alarms = [a for a in alarms if _local(a).date() == day]
    if not alarms:
        return turn.lang.say("alarm_none")
    if match.slots.get("next"):
        # The kind asked for when there is one: "my next alarm" is not a reminder.
        kind = match.slots.get("kind")
        alarms = [a for a in alarms if (a["label"] == ALARM) == (kind == "alarm")] or alarms
        key = "alarm_next" if alarms[0]["label"] == ALARM else "reminder_next"
        return turn.lang.say(key, item=_item(turn, alarms[0], now))
    items = [_item(turn, a, now) for a in alarms]
    key = "alarm_list_one" if len(items) == 1 else "alarm_list"
    return turn.lang.say(key, count=len(items), items=turn.lang.join(items))


async def _alarms(turn: Turn, now: dt.datetime | None = None
                  ) -> tuple[list[dict[str, Any]], dt.datetime] | str:
    """(the alarms set, soonest first; now), or the answer saying why they are not known."""
    if now is None:
        found = await _now(turn)
        if isinstance(found, str):
            return found
        now = found
    observation = await turn.call("timers", {"action": "list"})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    alarms = [t for t in observation["result"]["timers"] if t.get("at")]
    return sorted(alarms, key=lambda t: t["remaining_s"]), now


def _select(turn: Turn, match: Match, alarms: list[dict[str, Any]],
            now: dt.datetime) -> dict[str, Any] | str | None:
    """The one alarm the request means; an answer saying why there is none; None when
    the words said are no clock time."""
    if not alarms:
        return turn.lang.say("alarm_none")
    if match.said.get("when"):
        # "the 6:30 alarm" is the one at 6:30 AM or PM, "tomorrow at 7" the one then first.
        said = match.said["when"]
        times = {t for half in ("am", "pm") if (t := clocktimes.moment(
            said, now, turn.lang.words, turn.lang.numbers, half)) is not None
                 and (half == "am" or not match.slots.get("morning"))}
        if not times:
            return None
        hours = {(t.hour, t.minute) for t in times}
        alarms = [a for a in alarms if _local(a) in times] or \
            [a for a in alarms if (_local(a).hour, _local(a).minute) in hours]
        if not alarms:
            return turn.lang.say("alarm_not_found", when=said)
    elif match.said.get("name"):
        # Its words in any order: "take out the bins" is "take the bins out".
        name = speech.person(turn.lang, match.said["name"])
        alarms = [a for a in alarms if a["label"] != ALARM
                  and timers.words(turn, name) <= timers.words(turn, a["label"])]
        if not alarms:
            return turn.lang.say("reminder_not_found", name=name)
    if len(alarms) == 1:
        return alarms[0]
    return turn.lang.say("alarm_which", count=len(alarms),
                         items=turn.lang.join([_item(turn, a, now) for a in alarms]))


def _local(alarm: dict[str, Any]) -> dt.datetime:
    """The alarm's time as the box's clock shows it (naive)."""
    return dt.datetime.fromisoformat(alarm["at"]).replace(tzinfo=None)


def _time(turn: Turn, when: dt.datetime) -> str:
    """7:00 -> "7 AM", 18:30 -> "6:30 PM", 12:00 -> "noon", 0:00 -> "midnight"."""
    if when.minute == 0 and when.hour in (0, 12):
        return str(turn.lang.words["clock_times"]["noon" if when.hour else "midnight"][0])
    return speech.clock_time(turn.lang, when).replace(":00 ", " ")


def _day(turn: Turn, when: dt.datetime, now: dt.datetime) -> str:
    """"today", "tomorrow", "Friday", "next Monday" (a week from today)."""
    days = (when.date() - now.date()).days
    if days in (0, 1):
        return str(turn.lang.words["alarm_days"][days])
    name = speech.weekday(turn.lang, when)
    return turn.lang.words["alarm_next_week"].format(weekday=name) if days >= 7 else name


def _fields(turn: Turn, alarm: dict[str, Any], now: dt.datetime) -> dict[str, str]:
    when = _local(alarm)
    return {"time": _time(turn, when), "day": _day(turn, when, now.replace(tzinfo=None)),
            "name": alarm["label"]}


def _item(turn: Turn, alarm: dict[str, Any], now: dt.datetime) -> str:
    key = "alarm_item" if alarm["label"] == ALARM else "reminder_item"
    return turn.lang.answers[key].format(**_fields(turn, alarm, now))


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "AlarmSet": (start, ("clock", "timers")),
    "AlarmCancel": (cancel, ("clock", "timers")),
    "AlarmCancelAll": (cancel_all, ("clock", "timers")),
    "AlarmList": (listing, ("clock", "timers")),
}
