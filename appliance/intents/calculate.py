"""Arithmetic, from the calculator tool: "what is 12 times 7" -> "12 times 7 is 84."."""

from __future__ import annotations

from appliance.intents import arithmetic, speech
from appliance.intents.arithmetic import Expression
from appliance.intents.language import Language
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn

INTENT = "Calculate"


def expression(match: Match, lang: Language) -> Expression | None:
    """The calculation the match asks for, or None when its words are not arithmetic."""
    operation = match.slots.get("operation")
    if not operation:
        return arithmetic.translate(match.said.get("expression", ""), lang)
    a = arithmetic.translate(match.said.get("a", ""), lang, operand=True)
    b = arithmetic.translate(match.said.get("b", ""), lang, operand=True)
    if a is None or b is None:
        return None
    return arithmetic.combine(str(operation), a, b, lang)


def complete(match: Match, lang: Language) -> bool:
    return expression(match, lang) is not None


async def calculate(match: Match, turn: Turn) -> str | None:
    operation = match.slots.get("operation")
    found = expression(match, turn.lang)
    if found is None:
        return None
    observation = await turn.call("calculator", {"expression": found.code})
    if not observation["ok"]:
        problem = str(observation["error"])
        if problem.startswith("invalid arguments"):
            return None  # longer or odder than the calculator takes: the LLM may manage
        return turn.lang.say("calculation_failed", problem=problem)
    value, exact = speech.number(observation["result"]["value"])
    key = "calculated_percent" if operation == "percent_of" else "calculated"
    return turn.lang.say(key if exact else f"{key}_about", expression=found.said,
                         value=value)


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    INTENT: (calculate, ("calculator",)),
}
