"""An oven's gas mark in degrees and back: "what's gas mark 4 in celsius" -> "Gas mark 4 is
180 degrees Celsius."; "what gas mark is 200 degrees celsius" -> "200 degrees Celsius is
gas mark 6.".

The table is the one British cookery books and oven makers print (gas mark 4 is 180 °C,
350 °F); a fan oven runs about 20 °C cooler for the same dish. A temperature between two
marks is said as the nearest one, "about" (in the table's Fahrenheit column when it is
said in Fahrenheit), or as both when it is halfway.
"""

from __future__ import annotations

from appliance.intents import arithmetic
from appliance.intents.recognizer import Match
from appliance.intents.turn import Turn
from appliance.tools.base import ToolError
from appliance.tools.calculator import evaluate

#: Gas mark -> (degrees Celsius, degrees Fahrenheit).
MARKS: dict[str, tuple[int, int]] = {
    "1/4": (110, 225), "1/2": (120, 250), "1": (140, 275), "2": (150, 300),
    "3": (170, 325), "4": (180, 350), "5": (190, 375), "6": (200, 400),
    "7": (220, 425), "8": (230, 450), "9": (240, 475), "10": (260, 500)}
#: A fan oven cooks as hot this much cooler (degrees Celsius).
FAN_LESS_C = 20
#: How far outside the table (degrees Celsius) a temperature still has a nearest mark.
MARGIN_C = 15


def answer(match: Match, turn: Turn) -> str | None:
    """The answer to a gas-mark match (``slots.gas``): a mark in degrees, or degrees as a
    mark; None when the words are not one (the next match or the LLM answers)."""
    lang = turn.lang
    marks_said = {str(k): str(v) for k, v in lang.words["gas_marks_said"].items()}
    mark = match.slots.get("gas_mark")
    if isinstance(mark, str) and mark in MARKS:
        celsius, fahrenheit = MARKS[mark]
        said = marks_said.get(mark, mark)
        target = match.slots.get("target")
        if target == "fan":
            return lang.say("gas_mark_fan", mark=said, celsius=celsius - FAN_LESS_C)
        if target in ("celsius", "fahrenheit"):
            value = celsius if target == "celsius" else fahrenheit
            return lang.say("gas_mark_in", mark=said, value=value,
                            unit=lang.words["measures"][target][1])
        return lang.say("gas_mark", mark=said, celsius=celsius, fahrenheit=fahrenheit)
    source = match.slots.get("source")
    found = arithmetic.translate(str(match.said.get("amount", "")), lang, operand=True)
    if source not in ("celsius", "fahrenheit", "fan") or found is None:
        return None
    try:
        degrees = float(evaluate(found.code))
    except ToolError:
        return None
    column = 1 if source == "fahrenheit" else 0  # the table's own column, not a conversion
    hot = degrees + (FAN_LESS_C if source == "fan" else 0)
    scale = 9 / 5 if column else 1.0
    unit = lang.words["measures"]["celsius" if source == "fan" else source][1]
    lowest, highest = MARKS["1/4"][column], MARKS["10"][column]
    if not lowest - MARGIN_C * scale <= hot <= highest + MARGIN_C * scale:
        return lang.say("gas_mark_none", value=found.said, unit=unit, low=lowest,
                        high=highest)
    by_distance = sorted(MARKS, key=lambda m: abs(MARKS[m][column] - hot))
    nearest, second = by_distance[0], by_distance[1]
    unit += lang.words["fan_said"] if source == "fan" else ""
    gap = abs(MARKS[nearest][column] - hot)
    if gap < 0.5:
        return lang.say("to_gas_mark", value=found.said, unit=unit,
                        mark=marks_said.get(nearest, nearest))
    if abs(gap - abs(MARKS[second][column] - hot)) < 0.5:  # halfway: "between 2 and 3"
        low, high = sorted((nearest, second), key=lambda m: MARKS[m][column])
        return lang.say("to_gas_mark_between", value=found.said, unit=unit,
                        low=marks_said.get(low, low), high=marks_said.get(high, high))
    return lang.say("to_gas_mark_about", value=found.said, unit=unit,
                    mark=marks_said.get(nearest, nearest))
