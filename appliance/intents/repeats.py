"""The days a repeating alarm rings on, as said: "every day", "on weekdays", "every
Monday and Thursday", "Monday to Friday", "every morning" (and that it is the morning's).

:func:`find` takes the words of a request's time (or the end of a reminder's words) and
gives the days, the half of the day they name if any, and the words left, which are the
clock time. What repeats other than on days of the week ("every hour", "every other
day", "monthly") is named as such, so the answer can say what can be set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from appliance.tools.alarm_days import DAYS


@dataclass(frozen=True)
class Repeat:
    days: tuple[str, ...]
    """The timers tool's day names, Monday first; () when the repeat cannot be set."""
    half: str | None = None
    """"am", "pm" or "night" when the words name it ("every morning", "every evening",
    "every night")."""


def words(text: str) -> list[str]:
    """``text`` as the words :func:`find` reads (lower case, no commas or full stops
    after a word; "7:30" and "7.30" stay whole)."""
    return [w for w in (re.sub(r"[,;!?]|\.$", "", w.lower()) for w in text.split()) if w]


def find(said: list[str], table: dict[str, Any], weekdays: list[str]
         ) -> tuple[Repeat | None, list[str]]:
    """(the repeat ``said`` names, or None; the words left)."""
    rule = table["repeating"]
    names = [str(d).lower() for d in weekdays]
    left = list(said)
    days: set[int] = set()
    halves: set[str] = set()
    for phrase, meaning in sorted(rule["phrases"].items(), key=lambda kv: -len(kv[0])):
        left, found = _cut(left, phrase.split(), rule["lead"])
        if found:
            days |= set(_days(meaning["days"]))
            halves |= {meaning["half"]} if meaning.get("half") else set()
    weekly = False
    for phrase in rule["weekly"]:  # "every week on Monday": the days say which
        cut, found = _cut(left, phrase.split(), rule["lead"])
        if found and _weekdays(cut, names, rule, weekly=True)[1]:
            left, weekly = cut, True
    left, named = _weekdays(left, names, rule, weekly=weekly)
    days |= named
    unsupported = any(w in rule["never"] for w in left) or any(
        w in rule["every"] and i + 1 < len(left) and _unit(left[i + 1], rule)
        for i, w in enumerate(left))
    if unsupported:
        return Repeat(()), left
    if not days:
        return None, said
    return Repeat(tuple(DAYS[i] for i in sorted(days)),
                  next(iter(halves)) if len(halves) == 1 else None), left


def adjective(said: list[str], table: dict[str, Any]) -> Repeat | None:
    """The days said before "alarm" or "reminder": "weekday", "daily", "weekend"."""
    meaning = table["repeating"]["adjectives"].get(" ".join(said))
    if meaning is None:
        return None
    return Repeat(tuple(DAYS[i] for i in _days(meaning["days"])), meaning.get("half"))


def _unit(word: str, rule: dict[str, Any]) -> bool:
    """Whether "every <word>" repeats other than on days of the week."""
    return word in rule["units"] or word.isdigit()


def _days(spec: str) -> list[int]:
    """"mon-fri" -> [0..4], "sat,sun" -> [5, 6], "all" -> every day."""
    if spec == "all":
        return list(range(7))
    out: list[int] = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        a, b = DAYS.index(first), DAYS.index(last or first)
        out += list(range(a, b + 1))
    return out


def _cut(said: list[str], phrase: list[str], lead: list[str]) -> tuple[list[str], bool]:
    """``said`` without ``phrase`` (and an "on"/"at" before it); whether it was there."""
    n = len(phrase)
    for i in range(len(said) - n + 1):
        if said[i:i + n] == phrase:
            start = i - 1 if i and said[i - 1] in lead else i
            return said[:start] + said[i + n:], True
    return said, False


def _weekdays(said: list[str], names: list[str], rule: dict[str, Any], *, weekly: bool
              ) -> tuple[list[str], set[int]]:
    """The weekdays said as repeating, and the words left: "every Monday", "each Friday
    and Saturday", "Mondays", "on Mondays and Thursdays", "Monday to Friday"; with
    ``weekly`` ("every week" was said) "on Monday" too. A weekday alone ("on Monday") is
    one day, not a repeat, and is left."""
    def day(word: str) -> tuple[int, bool] | None:
        for i, name in enumerate(names):
            if word == name:
                return i, weekly
            if word == f"{name}s":
                return i, True
        return None

    i = 0
    while i < len(said):
        first = day(said[i])
        if first is None:
            i += 1
            continue
        start = i - 1 if i and said[i - 1] in rule["every"] else i
        every = start < i
        found, plural, j = [first[0]], first[1], i + 1
        if j + 1 < len(said) and said[j] in rule["range"] and day(said[j + 1]) is not None:
            last = day(said[j + 1])[0]  # type: ignore[index]
            found = [(first[0] + k) % 7 for k in range((last - first[0]) % 7 + 1)]
            every, j = True, j + 2
        while j < len(said):  # "Monday, Wednesday and Friday" (the commas are gone)
            joined = said[j] in rule["and"] and j + 1 < len(said)
            nxt = day(said[j + 1] if joined else said[j])
            if nxt is None:
                break
            found.append(nxt[0])
            plural, j = plural or nxt[1], j + 1 + joined
        if every or plural:
            if start and said[start - 1] in rule["lead"] + ["from"]:
                start -= 1
            return said[:start] + said[j:], set(found)
        i = j
    return said, set()
