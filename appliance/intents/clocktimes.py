"""A clock time as a household says it, to the moment it means next.

"7", "7:30", "seven thirty", "seven oh five", "five o clock", "half past six", "quarter
to eight", "ten past 9", "noon", "midnight", "19:00", "0730", "6 am", "6 in the evening",
"2 at night", "tonight at 11", "tomorrow at 7", "7 on Friday". The words are the
language's (``words.clock_times``, ``words.weekdays``, ``numbers``).

Which of the two 7 o'clocks, when neither am nor pm is said:

- waking ("wake me up at 7"): the morning's;
- a reminder ("remind me at 3 to ..."): 1 to 6 in the afternoon; with a day named
  ("tomorrow at 8"), 7 to 11 in the morning too;
- any other time with a day named ("an alarm for 6 tomorrow"): 5 to 11 in the morning,
  1 to 4 in the afternoon;
- at night ("tonight at 11", "1 at night"): 5 to 11 in the evening, 12 is midnight, 1
  to 4 the small hours after it;
- else the next one on the clock: at 3 PM, "7" is 7 PM today; at 8 PM, 7 AM tomorrow
  ("12" alone is the next noon or midnight).

A day named (tomorrow, a weekday) is the next such day, today included for a weekday
whose time has not passed ("next Monday" never today); with a day named, when its pick
has gone ("today at 8" at 9 AM) the other half of the day is taken. Midnight with a day
named is the one that ends that day ("midnight tonight"), and "tonight at 1" or "2 am
tonight" is after it. "quarter to 1" is 12:45 (the hour named, less the minutes);
"half seven" 7:30, as said in Britain.
:func:`moment` returns a naive local date and time; the timers tool reads it in the
box's timezone (so a change of daylight saving time in between is counted right).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from appliance.intents.numbers import parse_digits, parse_words

_COLON = re.compile(r"^(\d{1,2})[:.](\d{2})$")
_GLUED = re.compile(r"(\d)(am|pm)\b")
#: Speech recognition writes "a quarter to 7" as "¼ to 7".
_FRACTIONS = {"¼": " quarter ", "½": " half ", "¾": " three quarters "}


@dataclass(frozen=True)
class _Clock:
    """What the words say of the clock: ``hour`` (0-23, or 1-12 of either half),
    ``minute``, and ``less`` minutes before it ("ten to 7": 7, 0, 10)."""

    hour: int
    minute: int = 0
    less: int = 0
    exact: bool = False
    """Said on a 24-hour clock ("19:00", "07:30", "noon", "midnight"): no half to choose."""


def moment(text: str, now: dt.datetime, words: dict[str, Any], numbers: dict[str, Any], *,
           waking: bool = False, daytime: bool = False,
           repeating: bool = False) -> dt.datetime | None:
    """The next local date and time ``text`` names after ``now`` (naive, seconds 0);
    None when ``text`` is not a clock time (then the request is someone else's).
    ``waking``: an hour without am or pm is the morning's; ``daytime`` (a reminder): the
    daytime one; ``repeating`` (on days of the week): read as on a day named, whatever
    the hour it is said at ("every Saturday at 10" is 10 AM)."""
    table = words["clock_times"]
    plain = f" {_plain(text)} "
    days, said = _days(plain, now.date(), words)
    if days is None:
        return None
    if not repeating and not _named_day(days) and \
            any(f" {p} " in plain for p in table["today_halves"]):
        days = [now.date()]  # "5 this evening" is today's, gone or not
    halves: set[str] = set()
    for side in ("am", "pm", "night"):
        for phrase in sorted(table[side], key=len, reverse=True):
            said, found = _cut(said, phrase)
            if found:
                halves.add(side)
    if len(halves) > 1 and halves != {"pm", "night"}:
        return None
    half = "night" if "night" in halves else next(iter(halves), None)
    tonight = " tonight " in plain
    if tonight and half is None:
        half = "night"
    clock = _clock([w for w in said.split() if w not in table["filler"]], table, numbers)
    if clock is None or not 0 <= clock.minute < 60:
        return None
    named_day = _named_day(days)
    hours = _hours(clock, half, waking=waking, daytime=daytime,
                   named_day=named_day or repeating, night=tonight or half == "night")
    if hours is None:
        return None
    if repeating and not named_day:
        hours = [(hour, 0) for hour, _ in hours]  # the hour alone: the days are the tool's
    now = now.replace(tzinfo=None, second=0, microsecond=0)
    chosen = _first(now, days, hours, clock)
    if chosen is None and named_day and half is None and not clock.exact and \
            1 <= clock.hour <= 11 and not waking:
        # "today at 8" said at 9 AM: the other 8 o'clock, the one still to come.
        chosen = _first(now, days, [(clock.hour, 0), (clock.hour + 12, 0)], clock)
    return chosen


def _first(now: dt.datetime, days: list[dt.date], hours: list[tuple[int, int]],
           clock: _Clock) -> dt.datetime | None:
    """The first of the times after ``now``; an hour after midnight belongs to the night
    of the day named ("tonight at 1")."""
    times = [dt.datetime.combine(day + dt.timedelta(days=late), dt.time(hour, clock.minute))
             - dt.timedelta(minutes=clock.less)
             for day in days for hour, late in hours]
    return min((t for t in times if t > now), default=None)


def reads(text: str, words: dict[str, Any], numbers: dict[str, Any]) -> bool:
    """Whether ``text`` is a clock time (at any moment)."""
    return moment(text, dt.datetime(2000, 1, 3), words, numbers) is not None


def gone(text: str, now: dt.datetime, words: dict[str, Any], numbers: dict[str, Any],
         **how: bool) -> dt.datetime | None:
    """The latest time today that ``text`` names and that is gone ("8 today" at 8:30 PM:
    8 PM, not 8 AM); None when it names no time of today before ``now``. ``how`` as for
    :func:`moment`."""
    found: dt.datetime | None = None
    at: dt.datetime | None = now.replace(hour=0, minute=0, second=0, microsecond=0)
    while at is not None:
        at = moment(text, at, words, numbers, **how)
        if at is None or at.date() != now.date() or at > now.replace(tzinfo=None):
            break
        found = at
    return found


def day(text: str, now: dt.datetime, words: dict[str, Any]) -> dt.date | None:
    """The day ``text`` names alone ("tomorrow", "Friday", "today"); None if it is not
    only a day."""
    table = words["clock_times"]
    days, rest = _days(f" {_plain(text)} ", now.date(), words)
    for phrase in sorted([*table["am"], *table["pm"], *table["night"]], key=len, reverse=True):
        rest, _ = _cut(rest, phrase)  # "tomorrow morning" is tomorrow
    if days is None or not _named_day(days) or \
            [w for w in rest.split() if w not in table["filler"]]:
        return None
    return days[0]


def days_named(text: str, now: dt.datetime, words: dict[str, Any]) -> list[dt.date]:
    """The days ``text`` names ("tomorrow at 7", "Friday's"), with a time or not: one,
    or a weekday's two (this week's, today's included, and the next); [] for none."""
    days, _ = _days(f" {_plain(text)} ", now.date(), words)
    return days if days is not None and _named_day(days) else []


def _named_day(days: list[dt.date]) -> bool:
    """Whether ``days`` is a day named (one day, or a weekday and the one after it) and
    not today-or-tomorrow, the next time on the clock."""
    return len(days) == 1 or days[1] - days[0] == dt.timedelta(days=7)


def _days(said: str, today: dt.date, words: dict[str, Any]
          ) -> tuple[list[dt.date] | None, str]:
    """(the days the time may be on, the words left); None when two days are named."""
    table = words["clock_times"]
    found: list[list[dt.date]] = []
    for phrase, offset in sorted(table["days"].items(), key=lambda kv: -len(kv[0])):
        said, cut = _cut(said, phrase)
        if cut:
            found.append([today + dt.timedelta(days=int(offset))])
    for i, name in enumerate(words["weekdays"]):
        weekday = str(name).lower()
        said, after_next = _cut(said, f"{table['next']} {weekday}")
        said, cut = _cut(said, weekday)
        if after_next or cut:
            # "next Monday" said on a Monday is a week on, never today.
            ahead = dt.timedelta(days=(i - today.weekday()) % 7 or (7 if after_next else 0))
            found.append([today + ahead, today + ahead + dt.timedelta(days=7)])
    if len(found) > 1:
        return None, said
    return (found[0] if found else [today, today + dt.timedelta(days=1)]), said


def _hours(clock: _Clock, half: str | None, *, waking: bool, daytime: bool,
           named_day: bool, night: bool) -> list[tuple[int, int]] | None:
    """The hours of the day the clock may mean, each with the days after the day named
    that it falls on (1 for midnight and the small hours of a night named)."""
    hour, late = clock.hour, int(named_day)
    if clock.exact:
        if not 0 <= hour <= 23 or (half in ("am", "pm") and hour > 12):
            return None
        if hour == 0:  # midnight of a day named ends it; "tonight at 00:30" is after it
            return [(0, late if night or (clock.minute, clock.less) == (0, 0) else 0)]
        if half is None or hour > 12:
            return [(hour, 0)]
    if not 1 <= hour <= 12:
        return None
    if half == "am":
        return [(hour % 12, late if night else 0)]  # "2 am tonight": after midnight
    if half == "pm":
        return [(hour % 12 + 12, 0)]
    if half == "night":
        return [(0, late)] if hour == 12 else [(hour, late)] if hour <= 4 else \
            [(hour + 12, 0)]
    if hour == 12:
        return [(12, 0)] if daytime or named_day else [(0, 0), (12, 0)]
    if waking:
        return [(hour, 0)]
    # No reminder at 3 AM, and "tomorrow at 3" is in the afternoon; an alarm on a day named
    # at 5 or 6 wakes.
    if hour <= (6 if daytime else 4) and (daytime or named_day):
        return [(hour + 12, 0)]
    if named_day:
        return [(hour, 0)]
    return [(hour, 0), (hour + 12, 0)]


def _plain(text: str) -> str:
    said = text.lower().replace("a.m.", "am").replace("p.m.", "pm").replace("’", "'")
    for mark, words in _FRACTIONS.items():
        said = said.replace(mark, words)
    said = _GLUED.sub(r"\1 \2", said)
    said = re.sub(r"\bo'? ?clock\b", "oclock", said)  # "o'clock", "o clock": one word
    said = re.sub(r"(?<=[a-z])'s\b", "", said)  # "tomorrow's alarm"
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


def _clock(words: list[str], table: dict[str, Any], numbers: dict[str, Any]) -> _Clock | None:
    """What ``words`` say of the clock, all of them; None if a word is left over."""
    text = " ".join(words)
    if not text:
        return None
    named = _named(text, table)
    if named is not None:
        return named
    if len(words) == 1:
        digits = _COLON.match(words[0]) or re.fullmatch(r"(\d{1,2})(\d{2})", words[0])
        if digits:  # "7:30", "7.30", "19:00", "0730"; "07:30" and "19:00" are 24-hour
            hour, minute = int(digits.group(1)), int(digits.group(2))
            return _Clock(hour, minute, exact=words[0].startswith("0") or hour > 12
                          or hour == 0)
    for side in ("past", "to"):
        for joiner in table[side]:
            if f" {joiner} " in f" {text} ":
                before, after = f" {text} ".split(f" {joiner} ", 1)
                minutes = _minutes(before.split(), table, numbers)
                named = _hour(after.split(), table, numbers)
                if minutes is None or named is None or not 0 < minutes < 60:
                    return None
                if side == "past":
                    return _Clock(named.hour, minutes, exact=named.exact)
                return _Clock(named.hour, 0, minutes, exact=named.exact)
    alone = _hour(words, table, numbers)
    if alone is not None:
        return alone
    if words[0] in table["half"] and len(words) > 1:  # "half seven": 7:30, as in Britain
        named = _hour(words[1:], table, numbers)
        return _Clock(named.hour, 30, exact=named.exact) if named is not None else None
    first = _number(words, numbers)
    if first is None:
        return None
    rest = words[first[1]:]
    if rest[:1] in (["oh"], ["o"]) and len(rest) == 2:  # "seven oh five"
        late = _number(rest[1:], numbers)
        return _Clock(first[0], late[0]) if late is not None and late[0] < 10 else None
    late = _number(rest, numbers)
    if late is None or late[1] != len(rest):
        return None
    return _Clock(first[0], late[0], exact=first[0] > 12 or first[0] == 0)


def _named(text: str, table: dict[str, Any]) -> _Clock | None:
    if text in table["noon"]:
        return _Clock(12, exact=True)
    if text in table["midnight"]:
        return _Clock(0, exact=True)
    return None


def _hour(words: list[str], table: dict[str, Any], numbers: dict[str, Any]) -> _Clock | None:
    """An hour said alone: "7", "seven o'clock", "noon"."""
    words = [w for w in words if w not in table["oclock"]]
    named = _named(" ".join(words), table)
    if named is not None:
        return named
    found = _number(words, numbers)
    if found is None or found[1] != len(words):
        return None
    return _Clock(found[0], exact=found[0] > 12 or found[0] == 0)


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
