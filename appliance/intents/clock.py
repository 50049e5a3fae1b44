"""The time, the date and the weekday, from the clock tool (the box's timezone); the time
in another place; the day before or after today; the days until a holiday, a weekday or a
date, and the day it falls on (:mod:`appliance.intents.dates`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from appliance.intents import dates, speech
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn


async def _now(turn: Turn, timezone: str = "") -> dt.datetime | str:
    """The clock tool's time (here, or in ``timezone``), or its error text."""
    observation = await turn.call("clock", {"timezone": timezone} if timezone else {})
    if not observation["ok"]:
        return str(observation["error"])
    return dt.datetime.fromisoformat(observation["result"]["iso"])


async def time(match: Match, turn: Turn) -> str | None:
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    return turn.lang.say("time", time=speech.clock_time(turn.lang, now))


async def date(match: Match, turn: Turn) -> str | None:
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    return turn.lang.say("date", weekday=speech.weekday(turn.lang, now),
                         month=speech.month(turn.lang, now), day=now.day, year=now.year)


async def weekday(match: Match, turn: Turn) -> str | None:
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    today = speech.weekday(turn.lang, now)
    asked = match.slots.get("weekday")
    if asked:
        key = "weekday_yes" if str(asked).lower() == today.lower() else "weekday_no"
        return turn.lang.say(key, weekday=today)
    return turn.lang.say("weekday", weekday=today, month=speech.month(turn.lang, now),
                         day=now.day)


async def time_in(match: Match, turn: Turn) -> str | None:
    place = match.said.get("place", "")
    zone = dates.timezone(place, turn.lang.words["places"])
    if zone is None:
        return None  # not a place with a timezone here: the LLM may know it
    there, here = await _now(turn, zone), await _now(turn)
    if isinstance(there, str) or isinstance(here, str):
        return turn.lang.say("tool_failed", problem=there if isinstance(there, str) else here)
    said = dates.named(place)
    said = said.title() if said.islower() else said
    if there.date() == here.date():
        return turn.lang.say("time_in", time=speech.clock_time(turn.lang, there), place=said)
    return turn.lang.say("time_in_other_day", time=speech.clock_time(turn.lang, there),
                         weekday=speech.weekday(turn.lang, there), place=said)


async def relative(match: Match, turn: Turn) -> str | None:
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    offset = int(match.slots.get("offset", 0))
    when = now.date() + dt.timedelta(days=offset)
    return turn.lang.say("relative_day" if offset > 0 else "relative_day_past",
                         when=_bare(match.said.get("offset", "")),
                         weekday=speech.weekday(turn.lang, when),
                         month=speech.month(turn.lang, when), day=when.day)


async def until(match: Match, turn: Turn) -> str | None:
    found = await _occasion(match, turn)
    if isinstance(found, str) or found is None:
        return found
    name, today, when = found
    days = (when - today).days
    fields = {"occasion": name, "weekday": speech.weekday(turn.lang, when),
              "month": speech.month(turn.lang, when), "day": when.day, "days": days}
    if days == 0:
        return turn.lang.say("until_today", **fields)
    # A weekday is not said twice ("Friday is in 4 days, on December 11"), nor a date.
    kind = "until_weekday" if match.slots.get("weekday") else "until" \
        if match.slots.get("holiday") else "until_date"
    return turn.lang.say(f"{kind}_one" if days == 1 else kind, **fields)


async def day_of(match: Match, turn: Turn) -> str | None:
    found = await _occasion(match, turn)
    if isinstance(found, str) or found is None:
        return found
    name, today, when = found
    return turn.lang.say("day_of_today" if when == today else "day_of", occasion=name,
                         weekday=speech.weekday(turn.lang, when),
                         month=speech.month(turn.lang, when), day=when.day, year=when.year)


async def _occasion(match: Match, turn: Turn) -> tuple[str, dt.date, dt.date] | str | None:
    """(how the day is said back, today, the day's next occurrence); an answer when the
    clock failed or no month has the date; None when the match names no day."""
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    today = now.date()
    slots = match.slots
    holidays: dict[str, dict[str, Any]] = turn.lang.words["holidays"]
    if slots.get("holiday") in holidays:
        rule = holidays[str(slots["holiday"])]
        return str(rule["name"]), today, dates.next_holiday(today, rule)
    if slots.get("weekday"):
        names = [str(w).lower() for w in turn.lang.words["weekdays"]]
        index = names.index(str(slots["weekday"]).lower())
        return turn.lang.words["weekdays"][index], today, dates.next_weekday(today, index)
    if slots.get("month") and slots.get("day"):
        month, day = int(slots["month"]), int(slots["day"])
        month_name = turn.lang.words["months"][month - 1]
        when = dates.next_date(today, month, day)
        if when is None:
            return turn.lang.say("no_such_date", month=month_name, day=day)
        return f"{month_name} {day}", today, when
    return None


def _bare(said: str) -> str:
    """"tomorrow's" -> "tomorrow", "The day after tomorrow" -> "the day after tomorrow"."""
    words = said.strip()
    for ending in ("'s", "s"):
        if words.lower().endswith(f"w{ending}") or words.lower().endswith(f"y{ending}"):
            words = words[: -len(ending)]
            break
    return words[:1].lower() + words[1:]


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "ClockTime": (time, ("clock",)),
    "ClockDate": (date, ("clock",)),
    "ClockWeekday": (weekday, ("clock",)),
    "ClockTimeIn": (time_in, ("clock",)),
    "ClockRelative": (relative, ("clock",)),
    "ClockUntil": (until, ("clock",)),
    "ClockDayOf": (day_of, ("clock",)),
}
