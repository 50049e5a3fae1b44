"""Numbers in words and digits -> values, and values -> how they are said.

Reads the word lists of a language's ``numbers:`` section: units (0-19), tens,
hundred, scales (thousand, million...), the joiner ("one hundred and five"),
the decimal point word and fractions ("two and a half").
"""

from __future__ import annotations

import re
from typing import Any

#: "1,000" and "12.5"; a comma followed by three digits groups thousands.
DIGITS = re.compile(r"^[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)$")
#: Longest run of number words read as one number.
MAX_NUMBER_WORDS = 24


def parse_digits(word: str) -> float | int | None:
    """"1,024" -> 1024, "2.5" -> 2.5; None when ``word`` is not written in digits."""
    if not DIGITS.match(word):
        return None
    clean = word.replace(",", "")
    return float(clean) if "." in clean else int(clean)


def parse_words(words: list[str], start: int, table: dict[str, Any]) -> tuple[float | int, int]:
    """The number spelled by ``words[start:]``: (value, words used); (0, 0) when none.

    "twelve" -> 12, "one hundred and five" -> 105, "two thousand twenty four" -> 2024,
    "a million" -> 1000000, "twelve point five" -> 12.5, "two and a half" -> 2.5,
    "5 million" -> 5000000. Two numbers side by side ("twelve seven") are read as the
    first alone.
    """
    units, tens = table["units"], table["tens"]
    hundred, scales = table["hundred"], table["scales"]
    ones, joiner, points = set(table["one"]), table["joiner"], set(table["point"])
    total: float = 0
    current: float = 0
    last_scale = float("inf")
    used = 0
    last = ""  # the kind of the last word: digits, unit, teen, tens, hundred, scale, joiner
    end = min(len(words), start + MAX_NUMBER_WORDS)
    i = start
    while i < end:
        w = words[i]
        after = words[i + 1] if i + 1 < end else ""
        digits = parse_digits(w) if last == "" else None
        if digits is not None:
            current, last = digits, "digits"
        elif (w in units and last in ("", "hundred", "scale", "joiner")) \
                or (w in units and last == "tens" and 0 < units[w] < 10):
            current += units[w]
            last = "teen" if units[w] >= 10 else "unit"
        elif w in tens and last in ("", "hundred", "scale", "joiner"):
            current += tens[w]
            last = "tens"
        elif w in ones and last == "" and (after in hundred or after in scales):
            current, last = 1, "unit"
        elif w in hundred and last in ("unit", "teen", "tens", "digits") and current < 100:
            current = (current or 1) * hundred[w]
            last = "hundred"
        elif w in scales and last in ("unit", "teen", "tens", "hundred", "digits") \
                and scales[w] < last_scale:
            last_scale = scales[w]
            total += current * scales[w]
            current, last = 0, "scale"
        elif w == joiner and last in ("hundred", "scale") and (after in units or after in tens):
            last = "joiner"
        elif w == joiner and last in ("unit", "teen", "tens", "digits") \
                and _fraction_at(words, i + 1, table):
            return total + current + _fraction_at(words, i + 1, table), i + 3 - start
        elif w in points and last in ("", "unit", "teen", "tens", "digits") \
                and after in units and units[after] < 10:
            j, decimals = i + 1, ""
            while j < end and words[j] in units and units[words[j]] < 10:
                decimals += str(units[words[j]])
                j += 1
            return total + current + float("0." + decimals), j - start
        else:
            break
        i += 1
        if last != "joiner":
            used = i - start
    if used == 0:
        return 0, 0
    value = total + current
    return (int(value) if isinstance(value, float) and value.is_integer()
            and not any(isinstance(parse_digits(w), float) for w in words[start:start + used])
            else value), used


def _fraction_at(words: list[str], i: int, table: dict[str, Any]) -> float:
    """"a half" / "a quarter" at ``words[i]`` -> 0.5 / 0.25, else 0."""
    if i + 1 < len(words) and words[i] in table["one"] and words[i + 1] in table["fractions"]:
        return float(table["fractions"][words[i + 1]])
    return 0.0


def spoken(value: float | int, places: int = 4) -> tuple[str, bool]:
    """How ``value`` is said: (text, exact). 84 -> "84"; 3.3333... -> ("3.3333", False)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value), True
    if value != value or value in (float("inf"), float("-inf")):
        return str(value), True
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value)), True
    rounded = round(value, places)
    text = f"{rounded:.{places}f}".rstrip("0").rstrip(".")
    if text in ("0", "-0"):  # a tiny value: keep its significant digits
        text = f"{value:.3g}"
    return text, abs(rounded - value) < 1e-12
