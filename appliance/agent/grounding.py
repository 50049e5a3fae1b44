"""Whether an answer says what the tool found: the calculator's number, the clock's time.

Small models call the calculator and then say another number. After such a
tool answered, the loop checks the model's answer with :func:`grounded` and,
when it contradicts or leaves out the tool's value, answers from the
observation instead.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

#: Tools whose result the answer must carry.
CHECKED_TOOLS = ("calculator", "clock")
#: Relative difference allowed between the tool's number and the answer's (rounding).
RELATIVE_TOLERANCE = 0.01
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?")
_TIME = re.compile(r"\b(\d{1,2})[:.](\d{2})\b")


def grounded(text: str, name: str, observation: dict[str, Any],
             weekdays: list[str]) -> bool:
    """True when ``text`` carries the tool's value and contradicts none of it."""
    if not observation.get("ok"):
        return True
    result = observation.get("result") or {}
    if name == "calculator":
        return _has_number(text, result.get("value"))
    if name == "clock":
        return _has_time(text, result, weekdays)
    return True


def _has_number(text: str, value: Any) -> bool:
    if not isinstance(value, int | float):
        return True
    for m in _NUMBER.finditer(text):
        n = float(m.group(0).replace(",", ""))
        if abs(n - value) <= max(1e-9, RELATIVE_TOLERANCE * abs(value)):
            return True
    return False


def _has_time(text: str, result: dict[str, Any], weekdays: list[str]) -> bool:
    try:
        now = dt.datetime.fromisoformat(str(result["iso"]))
    except (KeyError, ValueError):
        return True
    told = False
    for m in _TIME.finditer(text):
        hour, minute = int(m.group(1)), int(m.group(2))
        if minute != now.minute or hour not in (now.hour, (now.hour - 1) % 12 + 1):
            return False
        told = True
    lowered = text.lower()
    named = [d for d in weekdays if d.lower() in lowered]
    if named:
        if named != [weekdays[now.weekday()]]:
            return False
        told = True
    years = [int(y) for y in re.findall(r"\b(19\d\d|2\d\d\d)\b", text)]
    if any(y != now.year for y in years):
        return False
    return told or bool(years)
