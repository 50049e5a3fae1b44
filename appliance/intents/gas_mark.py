"""An oven's gas mark in degrees and back: "what's gas mark 4 in celsius" -> "Gas mark 4 is
180 degrees Celsius."; "what gas mark is 200 degrees celsius" -> "200 degrees Celsius is
gas mark 6.".

The table is the one British cookery books and oven makers print (gas mark 4 is 180 °C,
350 °F); a fan oven runs about 20 °C cooler for the same dish. A temperature between two
marks is said as the nearest one, "about".
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
    hot = (degrees - 32) * 5 / 9 if source == "fahrenheit" else degrees  # Celsius
    hot += FAN_LESS_C if source == "fan" else 0
    nearest = min(MARKS, key=lambda m: abs(MARKS[m][0] - hot))
    unit = lang.words["measures"]["celsius" if source == "fan" else source][1]
    if not MARKS["1/4"][0] - MARGIN_C <= hot <= MARKS["10"][0] + MARGIN_C:
        return lang.say("gas_mark_none", value=found.said, unit=unit)
    exact = abs(MARKS[nearest][0] - hot) < 1 or (
        source == "fahrenheit" and abs(MARKS[nearest][1] - degrees) < 1)
    return lang.say("to_gas_mark" if exact else "to_gas_mark_about", value=found.said,
                    unit=unit + (lang.words["fan_said"] if source == "fan" else ""),
                    mark=marks_said.get(nearest, nearest))
