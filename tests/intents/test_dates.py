"""Days of the calendar and places' times: the rules on fixed dates, and the intents
through the real clock tool (expected values worked out here from the clock's date)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from appliance.intents import clock, dates, speech
from appliance.intents.component import Intents
from appliance.intents.language import load
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


@pytest.mark.parametrize(("holiday", "day"), [
    ("thanksgiving", dt.date(2026, 11, 26)), ("mothers_day", dt.date(2026, 5, 10)),
    ("fathers_day", dt.date(2026, 6, 21)), ("memorial_day", dt.date(2026, 5, 25)),
    ("labor_day", dt.date(2026, 9, 7)), ("good_friday", dt.date(2026, 4, 3)),
    ("easter", dt.date(2026, 4, 5)), ("halloween", dt.date(2026, 10, 31)),
    ("thanksgiving", dt.date(2027, 11, 25)), ("mothers_day", dt.date(2027, 5, 9)),
    ("memorial_day", dt.date(2027, 5, 31)), ("labor_day", dt.date(2027, 9, 6))])
def test_the_languages_holidays(holiday: str, day: dt.date) -> None:
    """The rules as en.yaml writes them (a typo in a weekday or an nth fails here)."""
    assert dates.holiday(load("en").words["holidays"][holiday], day.year) == day


def _on(today: dt.date, **slots: object) -> tuple[str, str, dt.date]:
    found = dates.occasion(slots, today, load("en").words)
    assert found is not None
    return found.name, found.kind, found.when


def test_the_day_asked_about_on_fixed_days() -> None:
    friday, christmas, new_years_eve = (dt.date(2026, 12, 11), dt.date(2026, 12, 25),
                                        dt.date(2026, 12, 31))
    # "until Friday" on a Friday is a week; on Thursday, tomorrow.
    assert _on(friday, weekday="friday") == ("Friday", "weekday", dt.date(2026, 12, 18))
    assert _on(friday - dt.timedelta(days=1), weekday="friday")[2] == friday
    # Christmas on Christmas is today; the day after, next year's; "this year", this one.
    assert _on(christmas, holiday="christmas") == ("Christmas", "holiday", christmas)
    assert _on(christmas + dt.timedelta(days=1), holiday="christmas")[2] == \
        dt.date(2027, 12, 25)
    assert _on(new_years_eve, holiday="christmas", this_year=True)[2] == christmas
    assert _on(new_years_eve, holiday="new_year")[2] == dt.date(2027, 1, 1)
    assert _on(new_years_eve, holiday="easter", this_year=True)[2] == dt.date(2026, 4, 5)
    # Dates: the next one, today's included; the 29th of February in the next leap year.
    assert _on(christmas, month=12, day=25) == ("December 25", "date", christmas)
    assert _on(christmas, month=2, day=29)[2] == dt.date(2028, 2, 29)
    with pytest.raises(dates.NoSuchDate, match="February 29 this year"):
        dates.occasion({"month": 2, "day": 29, "this_year": True}, christmas,
                       load("en").words)
    with pytest.raises(dates.NoSuchDate, match="April 31"):
        dates.occasion({"month": 4, "day": 31}, christmas, load("en").words)
    assert dates.occasion({}, christmas, load("en").words) is None


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
    ("London right now", "Europe/London"), ("the UK", "Europe/London"),
    # Not the old link Pacific/Samoa (American Samoa, a day behind), nor Argentina's San Juan.
    ("Samoa", "Pacific/Apia"), ("American Samoa", "Pacific/Pago_Pago"),
    ("San Juan", "America/Puerto_Rico"), ("Amsterdam", "Europe/Amsterdam")])
def test_places(place: str, zone: str) -> None:
    assert dates.timezone(place, load("en").words["places"]) == zone


@pytest.mark.parametrize("place", [
    "narnia", "GMT+5", "", "the west", "Victoria", "Canada", "Australia", "Washington"])
def test_what_is_no_place_or_more_than_one_zone(place: str) -> None:
    assert dates.timezone(place, load("en").words["places"]) is None


@pytest.mark.parametrize(("place", "said"), [
    ("new york", "New York"), ("the uk", "the UK"), ("rio de janeiro", "Rio de Janeiro"),
    ("Tokyo right now", "Tokyo"), ("washington dc", "Washington DC")])
def test_a_place_said_back(place: str, said: str) -> None:
    assert dates.said(place) == said


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo(TIMEZONE)).date()


async def test_days_until_and_the_day_it_falls_on(intents: Intents) -> None:
    """Through the real clock: the rules are the fixed-day test's; here, that the clock's
    today is the one used (either side of a midnight the run may cross)."""
    days = set()
    for today in {_today()} | {_today()}:
        christmas = dt.date(today.year, 12, 25)
        days.add(((christmas if christmas >= today else dt.date(today.year + 1, 12, 25))
                  - today).days)
    intent, answer = await say(intents, "how many days until christmas")
    assert intent == "ClockUntil"
    assert any(f"in {d} days," in answer or (d == 1 and "tomorrow" in answer)
               or (d == 0 and "today" in answer) for d in days), answer
    before = _today()
    intent, answer = await say(intents, "what day is christmas this year")
    after = _today()
    assert intent == "ClockDayOf"
    assert any(f"{dt.date(t.year, 12, 25):%A}, December 25" in answer for t in (before, after))
    assert await say(intents, "what day is february 30th") == (
        "ClockDayOf", "There is no February 30.")


async def test_a_remembered_fact_about_the_day_comes_first(intents: Intents) -> None:
    assert (await say(intents, "when is halloween"))[0] == "ClockDayOf"
    await say(intents, "remember that halloween is on saturday for us")
    assert await say(intents, "when is halloween") == (
        "MemoryRecall", "The halloween is on saturday for us.")
    assert (await say(intents, "how many days until halloween"))[0] == "ClockUntil"


async def test_the_time_and_the_date_at_once(intents: Intents) -> None:
    before = _today()
    intent, answer = await say(intents, "what's the time and date")
    days = {f"{d:%A}, {d:%B} {d.day}, {d.year}." for d in (before, _today())}
    assert intent == "ClockDateTime" and answer.startswith("It's ")
    assert any(answer.endswith(f" on {d}") for d in days), answer


async def test_tomorrow_and_yesterday(intents: Intents) -> None:
    for text, offset, verb in (("what's the date tomorrow", 1, "Tomorrow is"),
                               ("what's tomorrow's date", 1, "Tomorrow is"),
                               ("what day was it yesterday", -1, "Yesterday was")):
        before = _today()
        intent, answer = await say(intents, text)
        right = {f"{verb} {d:%A}, {d:%B} {d.day}." for d in (
            t + dt.timedelta(days=offset) for t in (before, _today()))}
        assert intent == "ClockRelative" and answer in right, (text, answer)


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


async def test_how_long_until_a_clock_time_and_the_time_in_some_hours(
        intents: Intents) -> None:
    zone = ZoneInfo(TIMEZONE)
    before = dt.datetime.now(zone)
    intent, answer = await say(intents, "how long until midnight")
    after = dt.datetime.now(zone)
    found = re.fullmatch(r"It's (?:(\d+) hours?)?(?: and )?(?:(\d+) minutes?)?"
                         r"(?:less than a minute)? until midnight\.", answer)
    assert intent == "ClockUntilTime" and found, answer
    left = dt.timedelta(hours=int(found.group(1) or 0), minutes=int(found.group(2) or 0))
    midnight = dt.datetime.combine(before.date() + dt.timedelta(days=1), dt.time(),
                                   tzinfo=zone)
    # In real time: a day with a daylight saving change has 23 or 25 hours.
    real = dt.timedelta(seconds=midnight.timestamp() - after.timestamp()), \
        dt.timedelta(seconds=midnight.timestamp() - before.timestamp())
    assert real[0] - dt.timedelta(minutes=1) <= left <= real[1] + dt.timedelta(minutes=1)
    for text in ("how long until christmas", "how long until the pasta is done"):
        assert (await say(intents, text))[0] != "ClockUntilTime", text

    intent, answer = await say(intents, "what time will it be in 3 hours")
    after = dt.datetime.now(zone)

    def said(now: dt.datetime) -> str:
        later = (now.astimezone(dt.UTC) + dt.timedelta(hours=3)).astimezone(zone)  # real time
        time = "noon" if (later.hour, later.minute) == (12, 0) else "midnight" if (
            later.hour, later.minute) == (0, 0) else f"{later:%-I:%M %p}".replace(":00 ", " ")
        day = " tomorrow" if later.date() != now.date() and time != "midnight" else ""
        return f"In 3 hours it will be {time}{day}."

    assert intent == "ClockTimeAfter" and answer in (said(before), said(after)), answer
    intent, answer = await say(intents, "what time was it 20 minutes ago")
    assert intent == "ClockTimeAfter" and answer.startswith("20 minutes ago it was "), answer
    assert (await say(intents, "what time is it in Tokyo"))[0] == "ClockTimeIn"



def test_hours_from_now_count_a_change_of_daylight_saving_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    # 1:30 on the night clocks go forward: 3 hours later the clock says 5:30.
    night = dt.datetime(2027, 3, 28, 1, 30, tzinfo=berlin)
    assert clock.shifted(night, dt.timedelta(hours=3)).strftime("%H:%M") == "05:30"
    # 5:00 that morning is 2.5 hours of real time after 1:30, not 3.5.
    five = clock.aware(dt.datetime(2027, 3, 28, 5, 0), night)
    assert five.astimezone(dt.UTC) - night.astimezone(dt.UTC) == dt.timedelta(hours=2.5)
    assert five.utcoffset() == dt.timedelta(hours=2)


def test_a_span_of_days_is_said_in_days() -> None:
    lang = load("en")
    assert speech.span(lang, dt.timedelta(hours=96, minutes=5)) == "4 days"
    assert speech.span(lang, dt.timedelta(hours=27, minutes=40)) == "1 day and 4 hours"
    assert speech.span(lang, dt.timedelta(hours=3, minutes=12, seconds=20)) == \
        "3 hours and 12 minutes"
    # To the minute below, as a clock counts: just after midnight the next is not a day off.
    assert speech.span(lang, dt.timedelta(hours=23, minutes=59, seconds=50)) == \
        "23 hours and 59 minutes"
