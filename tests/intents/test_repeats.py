"""The days a repeating alarm rings on, as said (appliance/intents/repeats.py)."""

from __future__ import annotations

import pytest

from appliance.intents import repeats
from appliance.intents.language import load

LANG = load("en")
TABLE, WEEKDAYS = LANG.words["clock_times"], LANG.words["weekdays"]
ALL = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORK = ALL[:5]


def find(text: str) -> tuple[repeats.Repeat | None, str]:
    repeat, left = repeats.find(repeats.words(text), TABLE, WEEKDAYS)
    return repeat, " ".join(left)


@pytest.mark.parametrize(("text", "days", "half", "left"), [
    ("every day at 7", ALL, None, "at 7"),
    ("daily at 7:30", ALL, None, "at 7:30"),
    ("7 every morning", ALL, "am", "7"),
    ("every night at 10", ALL, "night", "at 10"),
    ("every evening at 6", ALL, "pm", "at 6"),
    ("6 am on weekdays", WORK, None, "6 am"),
    ("at 7 on weekdays.", WORK, None, "at 7"),
    ("every weekday morning at 6", WORK, "am", "at 6"),
    ("monday to friday at 7", WORK, None, "at 7"),
    ("from Monday through Friday at 7", WORK, None, "at 7"),
    ("friday to monday at 9", ("mon", "fri", "sat", "sun"), None, "at 9"),  # round the week
    ("every Monday, Wednesday and Friday at 6:30", ("mon", "wed", "fri"), None, "at 6:30"),
    ("every monday and thursday at 6", ("mon", "thu"), None, "at 6"),
    ("mondays at 9", ("mon",), None, "at 9"),
    ("on Saturdays and Sundays at 9", ("sat", "sun"), None, "at 9"),
    ("every week on monday at 9", ("mon",), None, "at 9"),
    ("at 8 weekends", ("sat", "sun"), None, "at 8"),
    ("weekend mornings at 9", ("sat", "sun"), "am", "at 9"),
    ("8 on weekend.", ("sat", "sun"), None, "8"),  # as Whisper writes "on weekends"
])
def test_the_days_said(text: str, days: tuple[str, ...], half: str | None,
                       left: str) -> None:
    repeat, rest = find(text)
    assert repeat == repeats.Repeat(days, half) and rest == left


@pytest.mark.parametrize("text", [
    "every hour", "every other day at 7", "every 2 days at 7", "every two weeks at 9",
    "weekly at 9", "monthly at 9", "every month on the 1st",
])
def test_what_repeats_otherwise_is_named(text: str) -> None:
    repeat, _ = find(text)
    assert repeat == repeats.Repeat(())


@pytest.mark.parametrize("text", [
    "tomorrow at 7", "on monday at 7", "monday at 7", "next friday at 9", "at 7 tonight",
    "at 9 this weekend", "at 9 on the weekend",
])
def test_one_day_is_no_repeat(text: str) -> None:
    assert find(text) == (None, " ".join(repeats.words(text)))
