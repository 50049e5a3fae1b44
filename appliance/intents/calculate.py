"""Arithmetic, from the calculator tool: "what is 12 times 7" -> "12 times 7 is 84."."""

from __future__ import annotations

from appliance.intents import arithmetic, speech
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn


async def calculate(match: Match, turn: Turn) -> str | None:
    operation = match.slots.get("operation")
    if operation:
        a = arithmetic.translate(match.said.get("a", ""), turn.lang, operand=True)
        b = arithmetic.translate(match.said.get("b", ""), turn.lang, operand=True)
        if a is None or b is None:
            return None
        expression = arithmetic.combine(str(operation), a, b, turn.lang)
    else:
        found = arithmetic.translate(match.said.get("expression", ""), turn.lang)
        if found is None:
            return None
        expression = found
    observation = await turn.call("calculator", {"expression": expression.code})
    if not observation["ok"]:
        problem = str(observation["error"])
        if problem.startswith("invalid arguments"):
            return None  # longer or odder than the calculator takes: the LLM may manage
        return turn.lang.say("calculation_failed", problem=problem)
    value, exact = speech.number(observation["result"]["value"])
    key = "calculated_percent" if operation == "percent_of" else "calculated"
    return turn.lang.say(key if exact else f"{key}_about", expression=expression.said,
                         value=value)


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "Calculate": (calculate, ("calculator",)),
}
