"""The time, the date and the weekday, from the clock tool (the box's timezone); the time
in another place; the day before or after today; the days until a holiday, a weekday or a
date, and the day it falls on (:mod:`appliance.intents.dates`); how long until a clock
time, and the time some hours or minutes from now or ago."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.intents import clocktimes, dates, memory, speech, timers
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn


async def _now(turn: Turn, timezone: str = "") -> dt.datetime | str:
    """The clock tool's time (here, or in ``timezone``), or its error text."""
    observation = await turn.call("clock", {"timezone": timezone} if timezone else {})
    if not observation["ok"]:
        return str(observation["error"])
    return dt.datetime.fromisoformat(observation["result"]["iso"])


async def zoned_now(turn: Turn) -> dt.datetime | str:
    """The clock tool's now in its IANA timezone (so that hours added to it count a change
    of daylight saving time), else in the system's; or the answer saying why not known."""
    observation = await turn.call("clock", {})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    result = observation["result"]
    now = dt.datetime.fromisoformat(result["iso"])
    name = str(result.get("timezone", ""))
    if "/" not in name and name != "UTC":
        return now  # the system's own timezone: see aware() and shifted()
    try:
        return now.astimezone(ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError):
        return now


def aware(local: dt.datetime, now: dt.datetime) -> dt.datetime:
    """A local date and time (naive) in ``now``'s timezone, with the offset of that day."""
    if isinstance(now.tzinfo, ZoneInfo):
        return local.replace(tzinfo=now.tzinfo)
    return local.astimezone()  # the system's rules, daylight saving time included


def shifted(now: dt.datetime, by: dt.timedelta) -> dt.datetime:
    """``now`` plus ``by`` of real time, on the clock of ``now``'s timezone."""
    later = now.astimezone(dt.UTC) + by
    return later.astimezone(now.tzinfo if isinstance(now.tzinfo, ZoneInfo) else None)


async def time(match: Match, turn: Turn) -> str | None:
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    return turn.lang.say("time", time=speech.clock_time(turn.lang, now))


async def part_of_day(match: Match, turn: Turn) -> str | None:
    """"is it morning or afternoon": "It's Tuesday afternoon, 3:05 PM." (``day_parts``)."""
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    parts: dict[int, str] = turn.lang.words["day_parts"]
    start = max(hour for hour in parts if hour <= now.hour)
    return turn.lang.say("part_of_day_small_hours" if start == min(parts) else "part_of_day",
                         weekday=speech.weekday(turn.lang, now), part=parts[start],
                         time=speech.clock_time(turn.lang, now))


async def date(match: Match, turn: Turn) -> str | None:
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    part = match.slots.get("part")  # "what year is it": "It's 2026."
    return turn.lang.say(f"date_{part}" if part else "date",
                         weekday=speech.weekday(turn.lang, now),
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


async def date_time(match: Match, turn: Turn) -> str | None:
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    return turn.lang.say("clock_full", time=speech.clock_time(turn.lang, now),
                         weekday=speech.weekday(turn.lang, now),
                         month=speech.month(turn.lang, now), day=now.day, year=now.year)


async def time_in(match: Match, turn: Turn) -> str | None:
    place = match.said.get("place", "")
    zone = dates.timezone(place, turn.lang.words["places"])
    if zone is None:
        return None  # not a place with a timezone here: the LLM may know it
    there, here = await _now(turn, zone), await _now(turn)
    if isinstance(there, str) or isinstance(here, str):
        return turn.lang.say("tool_failed", problem=there if isinstance(there, str) else here)
    said = dates.said(place)
    if there.date() == here.date():
        return turn.lang.say("time_in", time=speech.clock_time(turn.lang, there), place=said)
    return turn.lang.say("time_in_other_day", time=speech.clock_time(turn.lang, there),
                         weekday=speech.weekday(turn.lang, there), place=said)


async def relative(match: Match, turn: Turn) -> str | None:
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    slots = match.slots
    lang = turn.lang
    if "span_days" in slots or "span_weeks" in slots:  # "a fortnight today", "3 days ago"
        days = int(slots.get("span_days", 0)) or 7 * int(slots.get("span_weeks", 0))
        offset = -days if slots.get("ago") else days
        # The unit said back: "14 days from today", "2 weeks from today" (a fortnight).
        span = _weeks(turn, days) if "span_weeks" in slots else \
            f"{days} {lang.unit('day', days)}"
        span = lang.words["span_one"].get(span, span)  # "a week from today"
        said = lang.answers["span_ago" if offset < 0 else "span_ahead"].format(span=span)
    else:
        offset = int(slots.get("offset", 0))
        said = lang.words["relative_days"][offset]
    when = now.date() + dt.timedelta(days=offset)
    key = "relative_day" if offset > 0 else "relative_day_past"
    return lang.say(key + ("_year" if when.year != now.year else ""), when=said,
                    weekday=speech.weekday(lang, when), month=speech.month(lang, when),
                    day=when.day, year=when.year)


async def until(match: Match, turn: Turn) -> str | None:
    found = await _occasion(match, turn)
    if isinstance(found, str) or found is None:
        return found
    day, today = found
    days = (day.when - today).days
    fields = _fields(turn, day, days=days)
    if days == 0:
        return turn.lang.say("until_today", **fields)
    # A weekday is not said twice ("Friday is in 4 days, on December 11"), nor a date.
    kind = {"weekday": "until_weekday", "holiday": "until", "date": "until_date"}[day.kind]
    if match.slots.get("weeks") and days >= 7:  # "Christmas is 2 weeks and 4 days away"
        return turn.lang.say(kind.replace("until", "until_weeks"), **fields,
                             weeks=_weeks(turn, days))
    return turn.lang.say(f"{kind}_one" if days == 1 else kind, **fields)


def _weeks(turn: Turn, days: int) -> str:
    """"2 weeks", "2 weeks and 4 days", "1 week and 1 day"."""
    weeks, rest = divmod(days, 7)
    said = f"{weeks} {turn.lang.unit('week', weeks)}"
    if not rest:
        return said
    return turn.lang.answers["weeks_and_days"].format(
        weeks=said, days=f"{rest} {turn.lang.unit('day', rest)}")


async def year_left(match: Match, turn: Turn) -> str | None:
    """"how many days are left in the year": the days after today to December 31."""
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    days = (dt.date(now.year, 12, 31) - now.date()).days
    key = "year_left_none" if days == 0 else "year_left_one" if days == 1 else "year_left"
    return turn.lang.say(key, days=days, year=now.year)


async def day_of(match: Match, turn: Turn) -> str | None:
    # "when is halloween" after "remember that halloween is on saturday for us": the fact.
    if turn.can("world_list") and await memory.remembered(turn, _said_day(match)):
        return None
    found = await _occasion(match, turn)
    if isinstance(found, str) or found is None:
        return found
    day, today = found
    # "Christmas is on Friday, December 25, 2026."; "Friday is December 11."; "December 25,
    # 2026 is a Friday."; each "was" for a day gone this year, "today" for today's.
    key = {"holiday": "day_of", "weekday": "day_of_weekday", "date": "day_of_date"}[day.kind]
    tense = "_today" if day.when == today else "_past" if day.when < today else ""
    return turn.lang.say(key + tense, **_fields(turn, day))


async def until_time(match: Match, turn: Turn) -> str | None:
    """"how long until 5 pm": the next 5 PM on the clock (:mod:`clocktimes`)."""
    now = await zoned_now(turn)
    if isinstance(now, str):
        return now
    when = clocktimes.moment(match.said.get("when", ""), now, turn.lang.words,
                             turn.lang.numbers)
    if when is None:
        return None  # not a clock time: "how long until the pasta is done" is a timer's
    left = aware(when, now).astimezone(dt.UTC) - now.astimezone(dt.UTC)
    said = _clock_said(turn, when, now)
    if left < dt.timedelta(minutes=1):
        return turn.lang.say("time_until_now", time=said)
    return turn.lang.say("time_until", left=speech.span(turn.lang, left), time=said)


async def time_after(match: Match, turn: Turn) -> str | None:
    """"what time will it be in 3 hours", "what time was it 20 minutes ago"."""
    now = await zoned_now(turn)
    if isinstance(now, str):
        return now
    seconds = timers.seconds_of(match.slots)
    if seconds <= 0:
        return None
    ago = bool(match.slots.get("ago"))
    when = shifted(now, dt.timedelta(seconds=-seconds if ago else seconds))
    return turn.lang.say("time_ago" if ago else "time_after",
                         span=speech.duration(turn.lang, seconds),
                         time=_clock_said(turn, when, now))


def _clock_said(turn: Turn, when: dt.datetime, now: dt.datetime) -> str:
    """"5 PM", "7:30 AM tomorrow", "11:50 PM yesterday", "9 AM on Friday"."""
    time = speech.hour_said(turn.lang, when)
    days = (when.date() - now.date()).days
    if days == 0 or (days == 1 and (when.hour, when.minute) == (0, 0)):
        return time  # "until midnight": tonight's
    if days in turn.lang.words["relative_days"] and abs(days) == 1:
        return f"{time} {turn.lang.words['relative_days'][days]}"
    return turn.lang.words["clock_on_day"].format(time=time,
                                                  weekday=speech.weekday(turn.lang, when))


def _fields(turn: Turn, day: dates.Occasion, **more: Any) -> dict[str, Any]:
    return {"occasion": day.name, "weekday": speech.weekday(turn.lang, day.when),
            "month": speech.month(turn.lang, day.when), "day": day.when.day,
            "year": day.when.year, **more}


def _said_day(match: Match) -> str:
    return " ".join(match.said[k] for k in ("holiday", "weekday", "month", "day")
                    if match.said.get(k))


async def _occasion(match: Match, turn: Turn) -> tuple[dates.Occasion, dt.date] | str | None:
    """(the day asked about, today); an answer when the clock failed or no month has the
    date; None when the match names no day."""
    now = await _now(turn)
    if isinstance(now, str):
        return turn.lang.say("tool_failed", problem=now)
    try:
        day = dates.occasion(match.slots, now.date(), turn.lang.words)
    except dates.NoSuchDate as exc:
        return turn.lang.say("no_such_date", date=str(exc))
    return (day, now.date()) if day is not None else None


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "ClockTime": (time, ("clock",)),
    "ClockDate": (date, ("clock",)),
    "ClockPartOfDay": (part_of_day, ("clock",)),
    "ClockWeekday": (weekday, ("clock",)),
    "ClockDateTime": (date_time, ("clock",)),
    "ClockTimeIn": (time_in, ("clock",)),
    "ClockRelative": (relative, ("clock",)),
    "ClockUntil": (until, ("clock",)),
    "ClockYearLeft": (year_left, ("clock",)),
    "ClockDayOf": (day_of, ("clock",)),
    "ClockUntilTime": (until_time, ("clock",)),
    "ClockTimeAfter": (time_after, ("clock",)),
}
