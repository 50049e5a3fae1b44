"""Alarms said back: their times and days as the clock shows them ("tomorrow at 7 AM",
"every weekday at 7 AM except Friday", "on Friday"), and which ring on a day."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from appliance.intents import repeats, speech
from appliance.intents.turn import Turn
from appliance.tools.timers import ALARM_LABEL as ALARM


def local(alarm: dict[str, Any], now: dt.datetime) -> dt.datetime:
    """The alarm's (next) time as the clock shows it (naive): in ``now``'s timezone when
    that is a named one, else at its own offset (a clock tool with no IANA name gives
    the offset of today, which is not the alarm's across a change of daylight saving)."""
    when = dt.datetime.fromisoformat(alarm["at"])
    if isinstance(now.tzinfo, ZoneInfo):
        when = when.astimezone(now.tzinfo)
    return when.replace(tzinfo=None)


def rings_on(alarm: dict[str, Any], day: dt.date, now: dt.datetime) -> bool:
    """Whether the alarm rings on ``day``: its next time's day, or a later one of its
    days that it does not leave out."""
    first = local(alarm, now).date()
    if not alarm.get("repeat") or day <= first:
        return day == first
    return repeats.DAYS[day.weekday()] in alarm["repeat"] and \
        day.isoformat() not in alarm.get("skip", [])


def off_on(alarm: dict[str, Any], day: dt.date, now: dt.datetime) -> bool:
    """Whether a repeating alarm leaves out ``day`` and that day's time is still to come
    (today's, rung or left out, is no longer what "the alarm on Monday" means)."""
    return day.isoformat() in alarm.get("skip", []) and \
        dt.datetime.combine(day, local(alarm, now).time()) > now.replace(tzinfo=None)


def of_kind(alarms: list[dict[str, Any]], kind: str | None) -> list[dict[str, Any]]:
    """The wake-up alarms (``kind`` "alarm") or the reminders among ``alarms``; all of
    them for no kind."""
    return [a for a in alarms if kind is None or (a["label"] == ALARM) == (kind == "alarm")]


def day_said(turn: Turn, when: dt.datetime, now: dt.datetime) -> str:
    """"today", "tomorrow", "Friday", "next Monday" (a week from today); the midnight that
    ends today is "tonight"'s."""
    days = (when.date() - now.date()).days
    if days == 1 and (when.hour, when.minute) == (0, 0):
        return str(turn.lang.words["alarm_tonight"])
    if days in (0, 1):
        return str(turn.lang.words["alarm_days"][days])
    name = speech.weekday(turn.lang, when)
    if days > 7:  # "Monday, December 21": not "next Monday" again
        return str(turn.lang.words["alarm_far_day"]).format(
            weekday=name, month=speech.month(turn.lang, when), day=when.day)
    return turn.lang.words["alarm_next_week"].format(weekday=name) if days == 7 else name


def on_day(turn: Turn, day: dt.date, now: dt.datetime) -> str:
    """"today", "tomorrow", "on Friday", "next Monday", "on Monday, December 21"."""
    said = day_said(turn, dt.datetime.combine(day, dt.time(12)), now.replace(tzinfo=None))
    if (day - now.date()).days in (0, 1, 7):  # "tomorrow", "next Friday"
        return said
    return str(turn.lang.words["alarm_on_day"]).format(day=said)


def fields(turn: Turn, alarm: dict[str, Any], now: dt.datetime) -> dict[str, str]:
    when = local(alarm, now)
    return {"time": speech.hour_said(turn.lang, when),
            "day": day_said(turn, when, now.replace(tzinfo=None)), "name": alarm["label"],
            "every": every(turn, alarm.get("repeat", []))}


def every(turn: Turn, days: list[str]) -> str:
    """"every day", "every weekday", "every Monday and Thursday"."""
    words = turn.lang.words
    if len(days) == 7:
        return str(words["repeat_every_day"])
    if days == list(repeats.DAYS[:5]):
        return str(words["repeat_weekdays"])
    names = [str(words["weekdays"][repeats.DAYS.index(d)]) for d in days]
    return str(words["repeat_days"]).format(days=turn.lang.join(names))


def item(turn: Turn, alarm: dict[str, Any], now: dt.datetime,
         on: dt.date | None = None) -> str:
    """"tomorrow at 7 AM", "every weekday at 7 AM"; ``on``: the one on that day."""
    out = fields(turn, alarm, now)
    repeating = bool(alarm.get("repeat")) and on is None
    if on is not None:
        out["day"] = day_said(turn, dt.datetime.combine(on, local(alarm, now).time()),
                              now.replace(tzinfo=None))
    key = "alarm_item" if alarm["label"] == ALARM else "reminder_item"
    text = turn.lang.answers[f"{key}_repeat" if repeating else key].format(**out)
    if repeating and alarm.get("skip"):  # "every day at 7 AM except tomorrow"
        off = [_this(turn, dt.date.fromisoformat(d), now) for d in alarm["skip"]]
        text = turn.lang.words["alarm_except"].format(item=text, days=turn.lang.join(off))
    return text


def _this(turn: Turn, day: dt.date, now: dt.datetime) -> str:
    """A day left out, as :func:`day_said` says it, but "this Saturday" within the week:
    "every Saturday and Sunday at 9 AM except this Saturday and this Sunday"."""
    said = day_said(turn, dt.datetime.combine(day, dt.time(12)), now.replace(tzinfo=None))
    if 2 <= (day - now.date()).days < 7:
        return str(turn.lang.words["alarm_this_week"]).format(weekday=said)
    return said


def courteous(turn: Turn, said: str) -> str:
    """``said`` without the thanks after it ("tomorrow, thanks" -> "tomorrow")."""
    words = said.split()
    while words and words[-1].lower().strip(",.!") in turn.lang.words["courtesy"]:
        words = words[:-1]
    return " ".join(words).rstrip(",")


def plain(said: str) -> str:
    """The words of a time said back: "tomorrow's" is "tomorrow"."""
    return re.sub(r"(?<=[a-z])'s\b", "", said, flags=re.I)
