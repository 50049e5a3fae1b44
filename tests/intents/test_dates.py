"""Days of the calendar and places' times: the rules on fixed dates, and the intents
through the real clock tool (expected values worked out here from the clock's date)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from appliance.intents import dates
from appliance.intents.component import Intents
from tests.intents.conftest import TIMEZONE
from tests.intents.test_answers import say

MONDAY = dt.date(2026, 12, 7)


@pytest.mark.parametrize(("year", "day"), [
    (2024, dt.date(2024, 3, 31)), (2025, dt.date(2025, 4, 20)), (2026, dt.date(2026, 4, 5)),
    (2027, dt.date(2027, 3, 28)), (2038, dt.date(2038, 4, 25)), (2285, dt.date(2285, 3, 22))])
def test_easter(year: int, day: dt.date) -> None:
    assert dates.easter(year) == day


def test_holiday_rules() -> None:
    assert dates.holiday({"month": 11, "weekday": 3, "nth": 4}, 2026) == dt.date(2026, 11, 26)
    assert dates.holiday({"month": 5, "weekday": 0, "nth": -1}, 2026) == dt.date(2026, 5, 25)
    assert dates.holiday({"month": 12, "weekday": 0, "nth": -1}, 2026) == dt.date(2026, 12, 28)
    assert dates.holiday({"month": 9, "weekday": 0, "nth": 1}, 2026) == dt.date(2026, 9, 7)
    assert dates.holiday({"rule": "easter", "offset": -2}, 2026) == dt.date(2026, 4, 3)
    # Today counts; a day gone this year is next year's.
    assert dates.next_holiday(dt.date(2026, 12, 25), {"month": 12, "day": 25}) == \
        dt.date(2026, 12, 25)
    assert dates.next_holiday(dt.date(2026, 12, 26), {"month": 12, "day": 25}) == \
        dt.date(2027, 12, 25)


def test_next_date_and_weekday() -> None:
    assert dates.next_date(MONDAY, 12, 25) == dt.date(2026, 12, 25)
    assert dates.next_date(MONDAY, 12, 7) == MONDAY
    assert dates.next_date(MONDAY, 1, 1) == dt.date(2027, 1, 1)
    assert dates.next_date(MONDAY, 2, 29) == dt.date(2028, 2, 29)
    assert dates.next_date(MONDAY, 2, 30) is None and dates.next_date(MONDAY, 4, 31) is None
    assert dates.next_weekday(MONDAY, 4) == dt.date(2026, 12, 11)
    assert dates.next_weekday(MONDAY, 0) == dt.date(2026, 12, 14)  # a week, not today


@pytest.mark.parametrize(("place", "zone"), [
    ("Tokyo", "Asia/Tokyo"), ("new york", "America/New_York"), ("the London", "Europe/London"),
    ("Los Angeles", "America/Los_Angeles"), ("Buenos Aires", "America/Argentina/Buenos_Aires"),
    ("California", "America/Los_Angeles"), ("beijing", "Asia/Shanghai"),
    ("London right now", "Europe/London")])
def test_places(place: str, zone: str) -> None:
    from appliance.intents.language import load
    assert dates.timezone(place, load("en").words["places"]) == zone


def test_what_is_no_place() -> None:
    assert dates.timezone("narnia", {}) is None
    assert dates.timezone("GMT+5", {}) is None
    assert dates.timezone("", {}) is None


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo(TIMEZONE)).date()


async def test_days_until_and_the_day_it_falls_on(intents: Intents) -> None:
    today = _today()
    christmas = dt.date(today.year, 12, 25)
    christmas = christmas if christmas >= today else dt.date(today.year + 1, 12, 25)
    intent, answer = await say(intents, "how many days until christmas")
    days = (christmas - today).days
    assert intent == "ClockUntil"
    if days > 1:
        assert answer == (f"Christmas is in {days} days, on {christmas:%A}, December 25.")
    intent, answer = await say(intents, "what day is christmas this year")
    assert (intent, answer) == ("ClockDayOf", f"Christmas is on {christmas:%A}, December 25, "
                                f"{christmas.year}." if christmas != today else
                                f"Christmas is today, {christmas:%A}, December 25.")
    friday = today + dt.timedelta(days=(4 - today.weekday() - 1) % 7 + 1)
    days = (friday - today).days
    assert await say(intents, "how many days until friday") == (
        "ClockUntil", f"Friday is in {days} days, on {friday:%B} {friday.day}." if days > 1
        else f"Friday is tomorrow, {friday:%B} {friday.day}.")
    assert await say(intents, "what day is february 30th") == (
        "ClockDayOf", "There is no February 30.")


async def test_tomorrow_and_yesterday(intents: Intents) -> None:
    tomorrow = _today() + dt.timedelta(days=1)
    assert await say(intents, "what's the date tomorrow") == (
        "ClockRelative", f"Tomorrow is {tomorrow:%A}, {tomorrow:%B} {tomorrow.day}.")
    assert await say(intents, "what's tomorrow's date") == (
        "ClockRelative", f"Tomorrow is {tomorrow:%A}, {tomorrow:%B} {tomorrow.day}.")
    yesterday = _today() - dt.timedelta(days=1)
    assert await say(intents, "what day was it yesterday") == (
        "ClockRelative", f"Yesterday was {yesterday:%A}, {yesterday:%B} {yesterday.day}.")


async def test_the_time_in_a_place(intents: Intents) -> None:
    answer = await intents.answer("what time is it in Tokyo")
    assert answer is not None and answer.intent == "ClockTimeIn"
    [there, here] = answer.calls
    assert there.arguments == {"timezone": "Asia/Tokyo"} and here.arguments == {}
    tokyo = dt.datetime.fromisoformat(there.observation["result"]["iso"])
    assert answer.text.startswith(f"It's {tokyo:%-I:%M %p}") and answer.text.endswith(
        "in Tokyo.")
    # A place with no timezone is not answered here (the LLM may know it).
    assert await say(intents, "what time is it in narnia") == (None, "")
