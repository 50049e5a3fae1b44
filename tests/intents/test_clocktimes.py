"""A clock time as said, to the moment it means next: the rules on fixed days."""

from __future__ import annotations

import datetime as dt

import pytest

from appliance.intents import clocktimes
from appliance.intents.language import load

LANG = load("en")
#: Monday, December 7, 2026.
AFTERNOON = dt.datetime(2026, 12, 7, 15, 10)
EVENING = dt.datetime(2026, 12, 7, 20, 0)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, minute)


@pytest.mark.parametrize(("text", "afternoon", "evening"), [
    # Neither am nor pm: the next on the clock.
    ("7", at(7, 19), at(8, 7)),
    ("7:30", at(7, 19, 30), at(8, 7, 30)),
    ("7.30", at(7, 19, 30), at(8, 7, 30)),
    ("seven thirty", at(7, 19, 30), at(8, 7, 30)),
    ("seven oh five", at(7, 19, 5), at(8, 7, 5)),
    ("7 30", at(7, 19, 30), at(8, 7, 30)),
    ("7 o'clock", at(7, 19), at(8, 7)),
    ("six forty five", at(7, 18, 45), at(8, 6, 45)),
    ("half past six", at(7, 18, 30), at(8, 6, 30)),
    ("half-past seven", at(7, 19, 30), at(8, 7, 30)),
    ("quarter to eight", at(7, 19, 45), at(8, 7, 45)),
    ("ten past 9", at(7, 21, 10), at(7, 21, 10)),
    ("20 minutes past 7", at(7, 19, 20), at(8, 7, 20)),
    ("twelve", at(8, 12), at(8, 12)),  # twelve alone is noon
    # Said whole.
    ("noon", at(8, 12), at(8, 12)),
    ("midnight", at(8, 0), at(8, 0)),
    ("midnight tonight", at(8, 0), at(8, 0)),
    ("19:00", at(7, 19), at(8, 19)),
    ("0730", at(8, 7, 30), at(8, 7, 30)),
    ("6 am", at(8, 6), at(8, 6)),
    ("6am", at(8, 6), at(8, 6)),
    ("6 a.m.", at(8, 6), at(8, 6)),
    ("three p m", at(8, 15), at(8, 15)),
    ("12 pm", at(8, 12), at(8, 12)),
    ("12am", at(8, 0), at(8, 0)),
    ("seven fifteen am", at(8, 7, 15), at(8, 7, 15)),
    ("6 in the evening", at(7, 18), at(8, 18)),
    ("quarter past 7 in the morning", at(8, 7, 15), at(8, 7, 15)),
    ("tonight at 11", at(7, 23), at(7, 23)),
    # A day named: its first such time.
    ("tomorrow at 7", at(8, 7), at(8, 7)),
    ("7 tomorrow morning", at(8, 7), at(8, 7)),
    ("6:30 p.m. tomorrow", at(8, 18, 30), at(8, 18, 30)),
    ("7 on friday", at(11, 7), at(11, 7)),
    ("at 7 on monday", at(7, 19), at(14, 7)),  # today, Monday, while 7 PM is to come
    ("monday at 6:45", at(7, 18, 45), at(14, 6, 45)),
])
def test_a_time_is_the_next_it_names(text: str, afternoon: dt.datetime,
                                     evening: dt.datetime) -> None:
    assert clocktimes.moment(text, AFTERNOON, LANG.words, LANG.numbers) == afternoon
    assert clocktimes.moment(text, EVENING, LANG.words, LANG.numbers) == evening


@pytest.mark.parametrize("text", [
    "5 minutes", "the kitchen", "13 pm", "25:00", "7:75", "seven eleven twelve",
    "today at 3",  # 3 AM and 3 PM have both gone today
    "tomorrow friday at 7", "7 am pm"])
def test_what_is_no_time_to_come_is_none(text: str) -> None:
    assert clocktimes.moment(text, AFTERNOON, LANG.words, LANG.numbers) is None


def test_waking_means_the_morning() -> None:
    assert clocktimes.moment("7", AFTERNOON, LANG.words, LANG.numbers, "am") == at(8, 7)
    assert clocktimes.moment("7 pm", AFTERNOON, LANG.words, LANG.numbers, "am") == at(7, 19)
    assert clocktimes.moment("19:00", AFTERNOON, LANG.words, LANG.numbers, "am") == at(7, 19)


def test_a_day_alone() -> None:
    assert clocktimes.day("tomorrow", AFTERNOON, LANG.words) == dt.date(2026, 12, 8)
    assert clocktimes.day("on Friday", AFTERNOON, LANG.words) == dt.date(2026, 12, 11)
    assert clocktimes.day("monday", AFTERNOON, LANG.words) == dt.date(2026, 12, 7)
    assert clocktimes.day("the day after tomorrow", AFTERNOON, LANG.words) == \
        dt.date(2026, 12, 9)
    assert clocktimes.day("at 7", AFTERNOON, LANG.words) is None
