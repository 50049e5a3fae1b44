"""Unit conversions: the units' arithmetic, and the intent answering through the real
calculator tool."""

from __future__ import annotations

from fractions import Fraction

import pytest

from appliance.intents import units
from appliance.intents.component import Intents
from appliance.tools.calculator import evaluate
from tests.intents.test_answers import say


@pytest.mark.parametrize(("amount", "source", "target", "value"), [
    ("212", "fahrenheit", "celsius", 100),
    ("-40", "celsius", "fahrenheit", -40),
    ("0", "celsius", "kelvin", 273.15),
    ("1", "pound", "gram", 453.59237),
    ("1", "mile", "kilometre", 1.609344),
    ("1", "cup", "millilitre", 236.5882365),
    ("1", "gallon", "litre", 3.785411784),
    ("60", "mile_per_hour", "kilometre_per_hour", 96.56064),
    ("1", "week", "minute", 10080),
])
def test_the_expression_is_the_exact_conversion(amount: str, source: str, target: str,
                                                value: float) -> None:
    code = units.expression(amount, *units.resolve(source, target))
    assert evaluate(code) == pytest.approx(value, rel=1e-12)


def test_an_ambiguous_word_is_settled_by_the_other_side() -> None:
    # "ounces" next to a volume is a fluid ounce; next to a weight, an ounce of weight.
    assert [u.name for u in units.resolve("ounce", "cup")] == ["fluid_ounce", "cup"]
    assert [u.name for u in units.resolve("cup", "ounce")] == ["cup", "fluid_ounce"]
    assert [u.name for u in units.resolve("ounce", "gram")] == ["ounce", "gram"]
    # "degrees" alone is the temperature scale the other side is not.
    assert [u.name for u in units.resolve("degree", "fahrenheit")] == ["celsius", "fahrenheit"]
    assert [u.name for u in units.resolve("degree", "celsius")] == ["fahrenheit", "celsius"]
    with pytest.raises(units.Mismatch) as caught:
        units.resolve("mile", "gram")
    assert caught.value.kinds == ("length", "mass")


def test_scales_are_the_defined_ones() -> None:
    assert units.UNITS["inch"].scale == Fraction(254, 10000)
    assert units.UNITS["gallon"].scale == Fraction(3785411784, 10**6)  # US, 231 cubic inches
    assert units.UNITS["mile"].scale == Fraction(1609344, 1000)
    assert units.UNITS["pound"].scale == Fraction(45359237, 100000)


@pytest.mark.parametrize(("value", "said"), [
    (453.59237, "454"), (176.6666, "177"), (8.04672, "8.05"), (1609.344, "1609"),
    (0.033814, "0.0338"), (0.000264172, "0.000264"), (1e-6, "0.000001"), (-40.0, "-40"),
    (604800, "604800"), (1609344, "1610000"), (12, "12"), (0, "0")])
def test_three_significant_figures_and_whole_numbers_of_up_to_six_digits(
        value: float, said: str) -> None:
    assert units.written(units.rounded(value)) == said


@pytest.mark.parametrize(("text", "answer"), [
    ("how many grams in a pound", "A pound is about 454 grams."),
    ("Convert 350 degrees Fahrenheit to Celsius.", "350 degrees Fahrenheit is about 177 "
                                                   "degrees Celsius."),
    ("350°F in celsius", "350 degrees Fahrenheit is about 177 degrees Celsius."),
    ("how many ounces in a cup", "A cup is 8 fluid ounces."),
    ("how many ounces in a pound", "A pound is 16 ounces."),
    ("half a cup in tablespoons", "Half a cup is 8 tablespoons."),
    ("how much is three quarters of a cup in ml", "Three quarters of a cup is about 177 "
                                                  "milliliters."),
    ("two and a half pounds in kilograms", "Two and a half pounds is about 1.13 kilograms."),
    ("a quarter pound in grams", "A quarter pound is about 113 grams."),
    ("1/2 cup in ml", "One half cup is about 118 milliliters."),
    ("1 1/2 cups in ml", "1 and a half cups is about 355 milliliters."),
    ("convert 2 1/4 pounds to kilograms", "2 and a quarter pounds is about 1.02 kilograms."),
    ("a cup and a half in ml", "One and a half cups is about 355 milliliters."),
    ("how many grams in a pound and a half", "One and a half pounds is about 680 grams."),
    ("what is an hour and a half in minutes", "One and a half hours is 90 minutes."),
    ("convert .5 cups to ml", "0.5 cups is about 118 milliliters."),
    ("convert 1 ml to gallons", "1 milliliter is about 0.000264 gallons."),
    ("how many millimeters in a mile", "A mile is about 1610000 millimeters."),
    ("how many seconds in a week", "A week is 604800 seconds."),
    ("minus 1 fahrenheit in celsius", "Minus 1 degree Fahrenheit is about minus 18.3 degrees "
                                      "Celsius."),
    ("how many tablespoons is 3 teaspoons", "3 teaspoons is 1 tablespoon."),
    ("what's minus 40 celsius in fahrenheit", "Minus 40 degrees Celsius is minus 40 degrees "
                                              "Fahrenheit."),
    ("what's 180 degrees in fahrenheit", "180 degrees Celsius is 356 degrees Fahrenheit."),
    ("60 mph in km/h", "60 miles per hour is about 96.6 kilometers per hour."),
    ("how many kilometers is 10 miles", "10 miles is about 16.1 kilometers."),
])
async def test_conversions_are_answered(intents: Intents, text: str, answer: str) -> None:
    assert await say(intents, text) == ("Convert", answer)


async def test_the_calculator_works_it_out(intents: Intents) -> None:
    answer = await intents.answer("convert 5 miles to kilometers")
    assert answer is not None and answer.text == "5 miles is about 8.05 kilometers."
    [call] = answer.calls
    assert call.name == "calculator" and call.arguments == {"expression": "(5)*25146/15625"}
    assert call.observation["result"]["value"] == pytest.approx(8.04672)


async def test_units_of_different_things_are_not_converted(intents: Intents) -> None:
    assert await say(intents, "convert 5 miles to kilograms") == (
        "Convert", "I can't convert miles to kilograms: a length is not a weight.")


async def test_what_is_not_an_amount_goes_on(intents: Intents) -> None:
    # Not a number before the unit: no conversion; the catch-all and the LLM are next.
    assert (await say(intents, "how many grams in my big pound"))[0] != "Convert"
    assert await say(intents, "how much is 2 pounds in dollars") == (None, "")
    # A part after the unit that is not "and a half" is not dropped: no answer rather
    # than "A pound is about 454 grams".
    for text in ("how many grams in a pound and a quarter", "how many grams in a pound and "
                 "3 ounces", "what is 1 hour and 30 minutes in minutes"):
        assert (await say(intents, text))[0] != "Convert", text
    # Too large to say, and no kitchen's: the LLM's.
    assert await say(intents, "2 to the power of 100 grams in kilograms") == (None, "")
    # A tiny amount is an amount (it was a crash of the arithmetic reader: "1e-05").
    assert await say(intents, "how many meters in 0.00001 miles") == (
        "Convert", "0.00001 miles is about 0.0161 meters.")


async def test_a_conversion_is_whole_at_its_last_word(intents: Intents) -> None:
    assert await intents.complete("how many grams in a pound")
    assert await intents.complete("350 fahrenheit in celsius")
    assert not await intents.complete("how many grams in my big pound")
