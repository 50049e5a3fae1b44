"""Values said the way a person says them: durations, clock times, dates, "my" -> "your"."""

from __future__ import annotations

import datetime as dt
import re

from appliance.intents.language import Language
from appliance.intents.numbers import spoken


def duration(lang: Language, seconds: float, *, before: bool = False) -> str:
    """5400 -> "1 hour and 30 minutes"; 150 -> "2 minutes and 30 seconds"; ``before`` a
    noun, its units are said as one ("the 5 minute timer")."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {lang.unit(unit, 1 if before else n)}" for n, unit in
             ((hours, "hour"), (minutes, "minute"), (secs, "second")) if n]
    if not parts:
        return f"0 {lang.unit('second', 0)}"
    return lang.join(parts)


def span(lang: Language, left: dt.timedelta) -> str:
    """How long until a time, to the minute below as a clock counts: "3 hours and 12
    minutes" (at 00:00:10, midnight is "23 hours and 59 minutes" away, not a day); from
    a day on, to the hour: "4 days and 3 hours"."""
    minutes = int(left.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    if not days:
        return duration(lang, minutes * 60)
    hours = round(rest / 60)
    if hours == 24:
        days, hours = days + 1, 0
    parts = [f"{n} {lang.unit(unit, n)}" for n, unit in ((days, "day"), (hours, "hour")) if n]
    return lang.join(parts)


def clock_time(lang: Language, when: dt.datetime) -> str:
    """15:05 -> "3:05 PM" (the language's ``time_format``)."""
    return when.strftime(lang.words["time_format"])


def hour_said(lang: Language, when: dt.datetime) -> str:
    """7:00 -> "7 AM", 18:30 -> "6:30 PM", 12:00 -> "noon", 0:00 -> "midnight"."""
    if when.minute == 0 and when.hour in (0, 12):
        return str(lang.words["clock_times"]["noon" if when.hour else "midnight"][0])
    return clock_time(lang, when).replace(":00 ", " ")


def weekday(lang: Language, when: dt.date) -> str:
    return str(lang.words["weekdays"][when.weekday()])


def month(lang: Language, when: dt.date) -> str:
    return str(lang.words["months"][when.month - 1])


def number(value: float | int) -> tuple[str, bool]:
    """(how the value is said, whether that is exact)."""
    return spoken(value)


def person(lang: Language, text: str, *, yours: bool = True) -> str:
    """What the user said about themselves, said back: "my code" -> "your code"; and
    about the box, with ``yours``: "your name" -> "my name". Not in a reminder's words
    (``yours`` False), where "you" is someone else: "say thank you", "tell mom I love
    you" -> "tell mom you love you"."""
    swap = lang.words["person"]
    if not yours:
        swap = {k: v for k, v in swap.items() if k not in lang.words["person_yours"]}

    kept_after_number = set(lang.words.get("person_kept_after_number") or ())
    number_words = {*lang.numbers.get("units", {}), *lang.numbers.get("tens", {})}

    def one(m: re.Match[str]) -> str:
        word = m.group(0)
        if word.lower() in kept_after_number:
            before = re.search(r"(\w+)\W*$", text[:m.start()])
            if before and (before.group(1)[-1].isdigit()
                           or before.group(1).lower() in number_words):
                return word  # "at 8 am", "at seven am": a time, not "at 8 are"
        out = str(swap.get(word.lower(), word))
        # "I" is written so anywhere: its capital says nothing of where it stands.
        return out[:1].upper() + out[1:] if word[:1].isupper() and "I" not in (word, out) \
            else out

    return re.sub(r"[^\W\d_]+(?:'[a-z]+)?", one, text)
