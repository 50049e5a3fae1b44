"""Days of the calendar a household asks about: holidays, a weekday, a date; and places'
timezones.

"how many days until Christmas", "what day is the 4th of July", "when is Easter": the
day's next occurrence from today (today itself included), in the box's timezone.
Holidays are the language's (``words.holidays``: a fixed month and day, or a rule:
``easter``, or the nth weekday of a month such as the US Thanksgiving, the fourth
Thursday of November).

"what time is it in Tokyo": a place is the last part of an IANA timezone name
("Asia/Tokyo" -> "tokyo", "America/New_York" -> "new york"), or one of the language's
``words.places`` ("california" -> "America/Los_Angeles").
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from typing import Any

#: Timezone names that are no place a person asks for ("Etc/GMT+5", "UTC", "EST5EDT").
_NOT_PLACES = re.compile(r"^(Etc/|SystemV/|US/|Canada/|Mexico/|Brazil/|Chile/)|^[A-Z0-9+-]+$")


def easter(year: int) -> dt.date:
    """Western Easter Sunday of ``year`` (the anonymous Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def holiday(rule: dict[str, Any], year: int) -> dt.date:
    """The day a ``words.holidays`` rule names in ``year``: ``{month, day}``, ``{rule:
    easter, offset}`` (days after Easter), or ``{month, weekday, nth}`` (weekday 0 is
    Monday; nth -1 is the last)."""
    if rule.get("rule") == "easter":
        return easter(year) + dt.timedelta(days=int(rule.get("offset", 0)))
    month = int(rule["month"])
    if "day" in rule:
        return dt.date(year, month, int(rule["day"]))
    weekday, nth = int(rule["weekday"]), int(rule["nth"])
    if nth > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7 + 7 * (-nth - 1))


def next_date(today: dt.date, month: int, day: int) -> dt.date | None:
    """The next ``month``/``day`` from ``today`` on (the 29th of February: the next leap
    year's); None for a day no month has."""
    for year in range(today.year, today.year + 9):
        try:
            when = dt.date(year, month, day)
        except ValueError:
            if month == 2 and day == 29:
                continue
            return None
        if when >= today:
            return when
    return None


def next_holiday(today: dt.date, rule: dict[str, Any]) -> dt.date:
    this_year = holiday(rule, today.year)
    return this_year if this_year >= today else holiday(rule, today.year + 1)


def next_weekday(today: dt.date, weekday: int) -> dt.date:
    """The next such weekday after today ("until Friday" on a Friday is a week)."""
    return today + dt.timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


@functools.cache
def _zones() -> dict[str, str]:
    places: dict[str, str] = {}
    for name in sorted(zoneinfo.available_timezones()):
        if "/" not in name or _NOT_PLACES.search(name):
            continue
        place = name.rsplit("/", 1)[1].replace("_", " ").lower()
        places.setdefault(place, name)
    return places


def named(place: str) -> str:
    """The place's own words: "London right now" -> "London"."""
    return re.sub(r"[\s,]+(right now|now|at the moment|currently|today|please)[\s.?!]*$", "",
                  place.strip(), flags=re.I)


def timezone(place: str, aliases: dict[str, str]) -> str | None:
    """The IANA timezone of ``place`` as said ("Tokyo", "new york", "California"), or None
    when no timezone is named so."""
    said = " ".join(re.sub(r"[^\w\s'-]", " ", named(place).lower()).replace("-", " ").split())
    said = re.sub(r"^(the|in|at)\s+", "", said)
    if not said:
        return None
    for key in (said, said.replace("saint ", "st "), said.replace("st ", "st. ")):
        if key in aliases:
            return aliases[key]
        if key in _zones():
            return _zones()[key]
    return None
