"""Alarms and reminders at a clock time: set, cancel (by time, by what to remember, the
only one, all), list, stop and snooze the one that just rang.

"wake me up at 7", "set an alarm for 6:30 tomorrow", "remind me at 5 pm to call mom".
The time is read by :mod:`appliance.intents.clocktimes` against the clock tool's now,
and the timers tool keeps it as an alarm (``at``, in the box's timezone, kept across a
restart). Countdown timers are :mod:`appliance.intents.timers`' and are not touched here;
an alarm is a timer with an ``at``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from appliance.intents import clock, clocktimes, speech, timers
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn
from appliance.tools.timers import ALARM_LABEL as ALARM

#: A snooze without a length.
SNOOZE_MINUTES = 9


def _at(when: dt.datetime, now: dt.datetime) -> str:
    """The alarm's ``at``: with the offset the clock's timezone has on that day."""
    return clock.aware(when, now).isoformat(timespec="seconds")


def _reading(turn: Turn, match: Match) -> tuple[str, str] | str | None:
    """(the time's words, what to be reminded of) as meant; an answer when the request
    asks for what cannot be done; None when it is not a request for an alarm.

    hassil may split the words at the wrong "to" or leave a day in the reminder: "remind
    me at ten to one to call" (when "ten", name "one to call"), "remind me to water the
    plants tomorrow at 2" (name "water the plants tomorrow")."""
    table = turn.lang.words["clock_times"]
    # A time or a reminder ends with its sentence: Whisper may repeat the request's start
    # after it ("Set an alarm for quarter past eight. Set in alarm for").
    when, name = (_sentence(match.said.get(k, "")) for k in ("when", "name"))
    words = name.split()
    plain = [w.lower().strip(".,!?") for w in words]
    said = [w.lower().strip(".,!?") for w in when.split()]
    if _repeating(table, said, plain, {str(d).lower() for d in turn.lang.words["weekdays"]}):
        rule = table["repeating"]
        rest = [w for w in said if w not in rule["alone"] and w not in rule["every"]
                and w not in rule["units"]]
        if not clocktimes.reads(" ".join(rest), turn.lang.words, turn.lang.numbers):
            return None  # hassil's split took more than the time: another split is right
        return turn.lang.say("alarm_repeating")  # "every day at 7": one at a time, said so
    if plain and plain[-1] in table["statement_ends"]:
        return None  # "remind me that the party is at 7": the party's time, not a reminder
    if "to" in plain[1:-1]:
        cut = plain.index("to")
        longer = f"{when} to {' '.join(words[:cut])}"
        if clocktimes.reads(longer, turn.lang.words, turn.lang.numbers):
            when, words = longer, words[cut + 1:]
    for size in range(min(3, len(words) - 1), 0, -1):  # "... tomorrow", "... on friday"
        tail = " ".join(words[-size:])
        if words[-size].lower() in table["for_day"]:
            break  # "buy a present for friday": the reminder's words
        if clocktimes.day(tail, dt.datetime(2000, 1, 1), turn.lang.words) is not None:
            when, words = f"{tail} {when}", words[:-size]
            break
    return when, " ".join(words)


def _sentence(text: str) -> str:
    """``text`` up to the end of its first sentence ("7.30" is one)."""
    return re.split(r"(?<!\d)[.!?]\s", text, maxsplit=1)[0]


def _repeating(table: dict[str, Any], when: list[str], name: list[str],
               weekdays: set[str]) -> bool:
    """"every day", "each morning", "every Monday" anywhere; "daily", "on weekdays" in the
    time (in a reminder they may be its words: "read the daily mail")."""
    rule = table["repeating"]
    units = set(rule["units"]) | weekdays | {f"{d}s" for d in weekdays}
    return any(w in rule["alone"] for w in when) or any(
        w in rule["every"] and i + 1 < len(words) and words[i + 1] in units
        for words in (when, name) for i, w in enumerate(words))


async def start(match: Match, turn: Turn) -> str | None:
    if not match.said.get("when"):
        return None
    reading = _reading(turn, match)
    if not isinstance(reading, tuple):
        return reading
    said, name = reading
    now = await clock.zoned_now(turn)
    if isinstance(now, str):
        return now
    when = clocktimes.moment(said, now, turn.lang.words, turn.lang.numbers,
                             waking=bool(match.slots.get("morning")), daytime=bool(name))
    if when is None:
        return None  # not a clock time: "set an alarm for 10 minutes" is a timer's
    name = speech.person(turn.lang, name)[:100]
    found = await _alarms(turn, now)
    if isinstance(found, str):
        return found
    for alarm in found.alarms:
        if _local(alarm) == when and alarm["label"] == (name or ALARM):
            return turn.lang.say("reminder_exists" if name else "alarm_exists",
                                 **_fields(turn, alarm, now))
    return await _set(turn, when, name or ALARM, now, "reminder_set" if name else "alarm_set")


async def _set(turn: Turn, when: dt.datetime, label: str, now: dt.datetime, key: str) -> str:
    observation = await turn.call("timers", {"action": "set", "at": _at(when, now),
                                             "label": label})
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


def _select(turn: Turn, match: Match, alarms: list[dict[str, Any]],
            now: dt.datetime) -> dict[str, Any] | str | None:
    """The one alarm the request means; an answer saying why there is none; None when
    the words said are no clock time ("turn off the smoke alarm" is not ours)."""
    said = match.said.get("when", "")
    times: set[dt.datetime] = set()
    if said:
        # "the 6:30 alarm" is the one at 6:30 AM or PM, "tomorrow at 7" the one then first.
        waking = bool(match.slots.get("morning"))
        readings = (said,) if waking else (said, f"{said} am", f"{said} pm")
        times = {t for text in readings if (t := clocktimes.moment(
            text, now, turn.lang.words, turn.lang.numbers, waking=waking)) is not None}
        day = clocktimes.day(said, now, turn.lang.words) if not times else None
        if not times and day is None:
            return None
    if not alarms:
        return turn.lang.say("alarm_none")
    if said and not times:  # "cancel the alarm for tomorrow": the one on that day
        alarms = [a for a in alarms if _local(a).date() == day]
        if not alarms:
            return turn.lang.say("alarm_not_found", when=said)
    elif said:
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
    when = _local(alarm)
    return {"time": speech.hour_said(turn.lang, when),
            "day": _day(turn, when, now.replace(tzinfo=None)), "name": alarm["label"]}


def _item(turn: Turn, alarm: dict[str, Any], now: dt.datetime) -> str:
    key = "alarm_item" if alarm["label"] == ALARM else "reminder_item"
    return turn.lang.answers[key].format(**_fields(turn, alarm, now))


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "AlarmSet": (start, ("clock", "timers")),
    "AlarmCancel": (cancel, ("clock", "timers")),
    "AlarmCancelAll": (cancel_all, ("clock", "timers")),
    "AlarmList": (listing, ("clock", "timers")),
    "AlarmSnooze": (snooze, ("clock", "timers")),
}
