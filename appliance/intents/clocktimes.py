"""A clock time as a household says it, to the moment it means next.

"7", "7:30", "seven thirty", "seven oh five", "half past six", "quarter to eight",
"ten past 9", "noon", "midnight", "19:00", "6 am", "6 in the evening", "tonight at 11",
"tomorrow at 7", "7 on Friday". The words are the language's (``words.clock_times``,
``words.weekdays``, ``numbers``).

A time said without am or pm is the next one on the clock: at 3 PM, "7" is 7 PM today;
at 8 PM, 7 AM tomorrow; with a day named ("tomorrow at 7"), its first (7 AM). A day
named (tomorrow, a weekday) is the next such day, today included for a weekday whose
time has not passed. :func:`moment` returns a naive local date and time; the timers
tool reads it in the box's timezone (so a change of daylight saving time in between is
counted right).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from appliance.intents.numbers import parse_digits, parse_words

_COLON = re.compile(r"^(\d{1,2})[:.](\d{2})$")
_TWENTY_FOUR = re.compile(r"^0\d[:.]?\d{2}$")
_GLUED = re.compile(r"(\d)(am|pm)\b")


def moment(text: str, now: dt.datetime, words: dict[str, Any], numbers: dict[str, Any],
           half: str | None = None) -> dt.datetime | None:
    """The next local date and time ``text`` names after ``now`` (naive, seconds 0);
    None when ``text`` is not a clock time (then the request is someone else's).
    ``half`` ("am", "pm") is the one meant when the text says neither."""
    default = half
    table = words["clock_times"]
    said = " " + _plain(text) + " "
    day: int | None = None
    for phrase, offset in sorted(table["days"].items(), key=lambda kv: -len(kv[0])):
        said, found = _cut(said, phrase)
        if found:
            if day is not None:
                return None
            day = -1 - int(offset)  # kept apart from weekdays: -1 today, -2 tomorrow ...
    for i, name in enumerate(words["weekdays"]):
        said, found = _cut(said, str(name).lower())
        if found:
            if day is not None:
                return None
            day = i
    half = None
    for side in ("am", "pm"):
        for phrase in sorted(table[side], key=len, reverse=True):
            said, found = _cut(said, phrase)
            if found:
                if half not in (None, side):
                    return None
                half = side
    left = [w for w in said.split() if w not in table["filler"]]
    clock = _clock(left, table, numbers)
    if clock is None:
        return None
    if clock == (0, 0) and day == -1:  # "midnight tonight": the one that ends today
        day = -2
    elif day == -1 and half is None and " tonight " in f" {_plain(text)} ":
        half = "pm"
    elif half is None and 1 <= clock[0] <= 11:
        half = default
    hour, minute = clock
    # "07:30" and "0730" are a 24-hour clock's; "7:30" may be either half.
    hours = (hour,) if half is None and len(left) == 1 and _TWENTY_FOUR.match(left[0]) \
        else _hours(hour, half)
    if hours is None:
        return None
    return _next(now.replace(tzinfo=None, second=0, microsecond=0), hours, minute, day)


def day(text: str, now: dt.datetime, words: dict[str, Any]) -> dt.date | None:
    """The day ``text`` names alone ("tomorrow", "Friday", "today"); None if it is not
    only a day."""
    table = words["clock_times"]
    names = [str(n).lower() for n in words["weekdays"]]
    plain = _plain(text)
    for said in (plain, " ".join(w for w in plain.split() if w not in table["filler"])):
        if said in table["days"]:
            return now.date() + dt.timedelta(days=int(table["days"][said]))
        if said in names:
            return now.date() + dt.timedelta(days=(names.index(said) - now.weekday()) % 7)
    return None


def _plain(text: str) -> str:
    said = text.lower().replace("a.m.", "am").replace("p.m.", "pm").replace("’", "'")
    said = _GLUED.sub(r"\1 \2", said)
    return " ".join(re.sub(r"[,!?;-]|\.(?!\d)", " ", said).split())


def _cut(said: str, phrase: str) -> tuple[str, bool]:
    """``said`` without ``phrase`` (whole words), and whether it was there."""
    mark = f" {phrase} "
    if mark not in said:
        return said, False
    return said.replace(mark, " ", 1), True


def _number(words: list[str], numbers: dict[str, Any]) -> tuple[int, int] | None:
    """(a whole number, the words it took) at the start of ``words``."""
    if not words:
        return None
    digits = parse_digits(words[0])
    if digits is not None:
        return (int(digits), 1) if float(digits).is_integer() else None
    value, used = parse_words(words, 0, numbers)
    return (int(value), used) if used and float(value).is_integer() else None


def _clock(words: list[str], table: dict[str, Any],
           numbers: dict[str, Any]) -> tuple[int, int] | None:
    """(hour, minute) that ``words`` say whole; None if a word is left over."""
    text = " ".join(words)
    if text in table["noon"]:
        return 12, 0
    if text in table["midnight"]:
        return 0, 0
    if len(words) == 1:
        colon = _COLON.match(words[0])
        if colon:
            return int(colon.group(1)), int(colon.group(2))
        if re.fullmatch(r"\d{3,4}", words[0]):  # "0730", "1930"
            return int(words[0][:-2]), int(words[0][-2:])
    for side, sign in (("past", 1), ("to", -1)):
        for joiner in table[side]:
            if f" {joiner} " in f" {text} ":
                before, after = f" {text} ".split(f" {joiner} ", 1)
                minutes = _minutes(before.split(), table, numbers)
                hour = _whole(after.split(), table, numbers)
                if minutes is None or hour is None or not 0 < minutes < 60:
                    return None
                if sign < 0:
                    return (hour - 1) % 24 if hour != 0 else 23, 60 - minutes
                return hour, minutes
    first = _number(words, numbers)
    if first is None:
        return None
    hour, used = first
    rest = [w for w in words[used:] if w not in table["oclock"]]
    if not rest:
        return hour, 0
    if rest[0] in ("oh", "o") and len(rest) == 2:  # "seven oh five"
        late = _number(rest[1:], numbers)
        return (hour, late[0]) if late is not None and late[0] < 10 else None
    late = _number(rest, numbers)
    if late is None or late[1] != len(rest):
        return None
    return hour, late[0]


def _whole(words: list[str], table: dict[str, Any], numbers: dict[str, Any]) -> int | None:
    words = [w for w in words if w not in table["oclock"]]
    if " ".join(words) in table["noon"]:
        return 12
    if " ".join(words) in table["midnight"]:
        return 0
    found = _number(words, numbers)
    return found[0] if found is not None and found[1] == len(words) else None


def _minutes(words: list[str], table: dict[str, Any], numbers: dict[str, Any]) -> int | None:
    """"half" 30, "a quarter" 15, "ten" / "10 minutes" 10."""
    words = [w for w in words if w not in table["minute_words"]]
    text = " ".join(words)
    if text in table["half"]:
        return 30
    if text in table["quarter"]:
        return 15
    found = _number(words, numbers)
    return found[0] if found is not None and found[1] == len(words) else None


def _hours(hour: int, half: str | None) -> tuple[int, ...] | None:
    """The hours of the day ``hour`` may mean, earliest first."""
    if half is None:  # 12 alone is noon: midnight is said so
        if 1 <= hour <= 11:
            return hour, hour + 12
        return (hour % 24,) if 0 <= hour <= 24 else None
    if not 1 <= hour <= 12:
        return None
    return (hour % 12 + (12 if half == "pm" else 0),)


def _next(now: dt.datetime, hours: tuple[int, ...], minute: int,
          day: int | None) -> dt.datetime | None:
    if not 0 <= minute < 60:
        return None
    today = now.date()
    if day is None:
        days = [today, today + dt.timedelta(days=1)]
    elif day < 0:
        days = [today + dt.timedelta(days=-1 - day)]
    else:
        ahead = (day - today.weekday()) % 7
        days = [today + dt.timedelta(days=ahead), today + dt.timedelta(days=ahead + 7)]
    times = [dt.datetime.combine(d, dt.time(h, minute)) for d in days for h in hours]
    return min((t for t in times if t > now), default=None)
