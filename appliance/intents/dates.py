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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError

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
    Monday; nth -1 is the last; and ``offset`` days after it: Black Friday is the day
    after the fourth Thursday of November)."""
    after = dt.timedelta(days=int(rule.get("offset", 0)))
    if rule.get("rule") == "easter":
        return easter(year) + after
    month = int(rule["month"])
    if "day" in rule:
        return dt.date(year, month, int(rule["day"]))
    weekday, nth = int(rule["weekday"]), int(rule["nth"])
    if nth > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1)) \
            + after
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7 + 7 * (-nth - 1)) + after


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


@dataclass(frozen=True)
class Occasion:
    """A day asked about: how it is said back, what kind of day it is ("holiday",
    "weekday" or "date") and when it is."""

    name: str
    kind: str
    when: dt.date


class NoSuchDate(ApplianceError):
    """A date no month has ("February 30", "February 29 this year" in 2027)."""


def occasion(slots: dict[str, Any], today: dt.date, words: dict[str, Any]) -> Occasion | None:
    """The day a match's slots name (``holiday``, ``weekday``, or ``month`` and ``day``):
    its next occurrence from ``today`` on, or one year's with ``this_year`` (that year:
    ``year``, else today's plus ``years_on``, "next year" 1); None when the slots name
    none; NoSuchDate for a date no month has. ``words``: the language's (``holidays``,
    ``weekdays``, ``months``)."""
    this_year = bool(slots.get("this_year"))
    year = int(slots.get("year") or today.year + int(slots.get("years_on") or 0))
    holidays: dict[str, dict[str, Any]] = words["holidays"]
    if slots.get("holiday") in holidays:
        rule = holidays[str(slots["holiday"])]
        when = holiday(rule, year) if this_year else next_holiday(today, rule)
        return Occasion(str(rule["name"]), "holiday", when)
    if slots.get("weekday"):
        if this_year and year != today.year:
            return None  # "what day is Monday next year": no one day
        names = [str(w).lower() for w in words["weekdays"]]
        index = names.index(str(slots["weekday"]).lower())
        return Occasion(str(words["weekdays"][index]), "weekday", next_weekday(today, index))
    if slots.get("month") and slots.get("day"):
        month, day = int(slots["month"]), int(slots["day"])
        name = f"{words['months'][month - 1]} {day}"
        try:
            found = dt.date(year, month, day) if this_year else next_date(today, month, day)
        except ValueError:
            found = None
        if found is None:
            raise NoSuchDate(f"{name} {'this year' if year == today.year else f'in {year}'}"
                             if this_year and (month, day) == (2, 29) else name)
        return Occasion(name, "date", found)
    return None


@functools.cache
def _zones() -> dict[str, str]:
    """Place -> timezone, from the zones the tz database lists per country (``zone.tab``):
    "Samoa" is not the old link Pacific/Samoa (American Samoa, a day behind Samoa), nor
    "the West" Australia/West. Without that file, every zone but the obvious aliases."""
    names = _country_zones() or sorted(zoneinfo.available_timezones())
    places: dict[str, str] = {}
    for name in names:
        if "/" not in name or _NOT_PLACES.search(name):
            continue
        place = name.rsplit("/", 1)[1].replace("_", " ").lower()
        places.setdefault(place, name)
    return places


def _country_zones() -> list[str]:
    for root in zoneinfo.TZPATH:
        table = Path(root) / "zone.tab"
        try:
            lines = table.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        return sorted(line.split("\t")[2] for line in lines
                      if line and not line.startswith("#") and line.count("\t") >= 2)
    return []


def _untimed(place: str) -> str:
    """``place`` without the words about when: "London right now" -> "London"."""
    words = re.sub(r"[\s,]+(right now|now|at the moment|currently|today|please)[\s.?!]*$",
                   "", place.strip(), flags=re.I)
    return re.sub(r"^(in|at)\s+", "", words, flags=re.I)


def named(place: str) -> str:
    """The place's own words: "London right now" -> "London", "the UK" -> "UK"."""
    return re.sub(r"^the\s+", "", _untimed(place), flags=re.I)


def said(place: str) -> str:
    """A place as said back: as written, or capitalised when written all in lower case
    ("new york" -> "New York", "the uk" -> "the UK", "rio de janeiro" -> "Rio de
    Janeiro")."""
    words = _untimed(place)
    if not words.islower():
        return words
    small = {"the", "de", "da", "do", "del", "la", "le", "of", "and", "es", "al"}
    return " ".join(w if w in small else w.upper() if len(w) <= 2 else w.capitalize()
                    for w in words.split())


def timezone(place: str, aliases: dict[str, str]) -> str | None:
    """The IANA timezone of ``place`` as said ("Tokyo", "new york", "California"), or None
    when no timezone is named so."""
    words = " ".join(re.sub(r"[^\w\s'-]", " ", named(place).lower()).replace("-", " ").split())
    if not words:
        return None
    for key in (words, words.replace("saint ", "st "), words.replace("st ", "st. ")):
        if key in aliases:
            return aliases[key]
        if key in _zones():
            return _zones()[key]
    return None
