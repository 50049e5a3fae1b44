"""The time, the date and the weekday, from the clock tool (the box's timezone)."""

from __future__ import annotations

import datetime as dt

from appliance.intents import speech
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn


async def _now(turn: Turn) -> dt.datetime | str:
    """The clock tool's time, or its error text."""
    observation = await turn.call("clock", {})
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


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "ClockTime": (time, ("clock",)),
    "ClockDate": (date, ("clock",)),
    "ClockWeekday": (weekday, ("clock",)),
}
