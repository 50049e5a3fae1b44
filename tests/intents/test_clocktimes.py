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
    ("¼ to 8", at(7, 19, 45), at(8, 7, 45)),  # as Whisper writes it
    ("½ past 6", at(7, 18, 30), at(8, 6, 30)),
    ("ten past 9", at(7, 21, 10), at(7, 21, 10)),
    ("20 minutes past 7", at(7, 19, 20), at(8, 7, 20)),
    ("twelve", at(8, 0), at(8, 0)),  # the next noon or midnight
    ("12:30", at(8, 0, 30), at(8, 0, 30)),
    ("quarter to 1", at(8, 0, 45), at(8, 0, 45)),  # 12:45, the hour named less 15
    ("ten to midnight", at(7, 23, 50), at(7, 23, 50)),
    ("half past midnight", at(8, 0, 30), at(8, 0, 30)),
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
    ("quarter to 1 pm", at(8, 12, 45), at(8, 12, 45)),
    ("five to twelve pm", at(8, 11, 55), at(8, 11, 55)),
    ("1030", at(7, 22, 30), at(7, 22, 30)),  # Whisper's "ten thirty": either half
    # At night: 5 to 11 in the evening, 12 midnight, 1 to 4 the small hours.
    ("tonight at 11", at(7, 23), at(7, 23)),
    ("tonight at 1", at(8, 1), at(8, 1)),
    ("tonight at 12", at(8, 0), at(8, 0)),
    ("2 at night", at(8, 2), at(8, 2)),
    ("11 at night", at(7, 23), at(7, 23)),
    ("12 at night", at(8, 0), at(8, 0)),
    ("tomorrow night at 12", at(9, 0), at(9, 0)),
    ("tomorrow at midnight", at(9, 0), at(9, 0)),
    # A day named: 5 to 11 in the morning, 1 to 4 in the afternoon, 12 noon.
    ("tomorrow at 7", at(8, 7), at(8, 7)),
    ("tomorrow at 6", at(8, 6), at(8, 6)),
    ("tomorrow at 3", at(8, 15), at(8, 15)),
    ("tomorrow at 12", at(8, 12), at(8, 12)),
    ("saturday at quarter to 7", at(12, 6, 45), at(12, 6, 45)),
    ("7 tomorrow morning", at(8, 7), at(8, 7)),
    ("6:30 p.m. tomorrow", at(8, 18, 30), at(8, 18, 30)),
    ("7 on friday", at(11, 7), at(11, 7)),
    ("at 7 on monday", at(14, 7), at(14, 7)),  # today's 7 AM has gone
    ("monday at 6:45", at(14, 6, 45), at(14, 6, 45)),
    ("monday at 9 pm", at(7, 21), at(7, 21)),  # today, Monday, while 9 PM is to come
    ("next monday at 9", at(14, 9), at(14, 9)),  # never today
    ("next friday at 9", at(11, 9), at(11, 9)),
    ("today at 8", at(7, 20), None),  # the 8 o'clock still to come today, or none
    ("2 am tonight", at(8, 2), at(8, 2)),
    ("tonight at ten past midnight", at(8, 0, 10), at(8, 0, 10)),
    ("tonight at 00:30", at(8, 0, 30), at(8, 0, 30)),
    ("five o clock", at(7, 17), at(8, 5)),
    ("half seven", at(7, 19, 30), at(8, 7, 30)),  # 7:30, as said in Britain
    ("12 tonight", at(8, 0), at(8, 0)),
])
def test_a_time_is_the_next_it_names(text: str, afternoon: dt.datetime,
                                     evening: dt.datetime | None) -> None:
    assert clocktimes.moment(text, AFTERNOON, LANG.words, LANG.numbers) == afternoon
    assert clocktimes.moment(text, EVENING, LANG.words, LANG.numbers) == evening


@pytest.mark.parametrize("text", [
    "5 minutes", "the kitchen", "13 pm", "25:00", "7:75", "seven eleven twelve",
    "today at 3",  # 3 AM and 3 PM have both gone today
    "tomorrow friday at 7", "7 am pm", "", "at", "7 am at night", "0:75"])
def test_what_is_no_time_to_come_is_none(text: str) -> None:
    assert clocktimes.moment(text, AFTERNOON, LANG.words, LANG.numbers) is None


def test_waking_means_the_morning_and_a_reminder_the_daytime() -> None:
    def wake(text: str) -> dt.datetime | None:
        return clocktimes.moment(text, AFTERNOON, LANG.words, LANG.numbers, waking=True)

    def remind(text: str, now: dt.datetime = AFTERNOON) -> dt.datetime | None:
        return clocktimes.moment(text, now, LANG.words, LANG.numbers, daytime=True)

    assert wake("7") == at(8, 7) and wake("7 pm") == at(7, 19) and wake("19:00") == at(7, 19)
    assert remind("3") == at(8, 15) and remind("3", EVENING) == at(8, 15)  # never 3 AM
    assert remind("8") == at(7, 20) and remind("8", EVENING) == at(8, 8)  # the next 8
    assert remind("tomorrow at 8") == at(8, 8) and remind("tomorrow at 6") == at(8, 18)
    assert remind("quarter to 1") == at(8, 12, 45)


def test_a_day_alone() -> None:
    assert clocktimes.day("tomorrow", AFTERNOON, LANG.words) == dt.date(2026, 12, 8)
    assert clocktimes.day("on Friday", AFTERNOON, LANG.words) == dt.date(2026, 12, 11)
    assert clocktimes.day("monday", AFTERNOON, LANG.words) == dt.date(2026, 12, 7)
    assert clocktimes.day("the day after tomorrow", AFTERNOON, LANG.words) == \
        dt.date(2026, 12, 9)
    assert clocktimes.day("at 7", AFTERNOON, LANG.words) is None
