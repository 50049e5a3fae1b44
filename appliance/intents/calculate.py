"""Arithmetic, from the calculator tool: "what is 12 times 7" -> "12 times 7 is 84.";
a tip ("a 20 percent tip on 45 dollars" -> 9 dollars), a discount ("10 percent off 60
dollars" -> 54 dollars) and a sum split ("split 90 dollars between 4 people" -> 22.50
dollars each), money said back to the cent."""

from __future__ import annotations

import re

from appliance.intents import arithmetic, speech
from appliance.intents.arithmetic import Expression
from appliance.intents.language import Language
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn

INTENT = "Calculate"


#: How a tip or a share is worked out from its two operands' code.
MONEY = {"tip": "({a})*({b})/100", "discount": "({a})*(100-({b}))/100",
         "split": "({a})/({b})"}
#: Those whose amount is the slot ``b`` and whose other operand is a percent.
PERCENT = ("tip", "discount")


def expression(match: Match, lang: Language) -> Expression | None:
    """The calculation the match asks for, or None when its words are not arithmetic."""
    operation = match.slots.get("operation")
    if not operation:
        return arithmetic.translate(match.said.get("expression", ""), lang)
    if operation in MONEY:
        return _money_sum(str(operation), match, lang)[0]
    a = arithmetic.translate(match.said.get("a", ""), lang, operand=True)
    b = arithmetic.translate(match.said.get("b", ""), lang, operand=True)
    if a is None or b is None:
        return None
    return arithmetic.combine(str(operation), a, b, lang)


def complete(match: Match, lang: Language) -> bool:
    return expression(match, lang) is not None


def _money_sum(operation: str, match: Match, lang: Language,
               ) -> tuple[Expression | None, dict[str, str]]:
    """A tip's or a split's calculation, and how its parts are said back: the sum with its
    money word ("45 dollars", from "$45" too), the percent or the ways."""
    words = lang.words
    percent = operation in PERCENT
    amount = match.said.get("b" if percent else "a", "").strip().lower()
    other = match.said.get("a" if percent else "b", "").strip().lower()
    ways = match.slots.get("b")
    if not percent and isinstance(ways, int | float) and not isinstance(ways, bool):
        other = str(ways)  # a list's number: "split 84 pounds four ways" ("for", misheard)
    unit = next((u for s, u in words["money_signs"].items() if s in amount), "")
    amount = amount.translate({ord(s): " " for s in words["money_signs"]}).strip()
    for lead in sorted(words["money_leading"], key=len, reverse=True):
        amount = amount.removeprefix(f"{lead} ")
    *rest, last = amount.split() or [""]
    if last in words["money_units"]:
        amount, unit = " ".join(rest), words["money_units"][last]
    for tail in words["split_by"]:
        other = other.removesuffix(f" {tail}")
    a = arithmetic.translate(amount, lang, operand=True)
    b = arithmetic.translate(other, lang, operand=True)
    if a is None or b is None or (operation == "split" and not _ways(b.code)) or (
            percent and b.code.lstrip("(").startswith("-")):  # "minus 10 percent off"
        return None, {}
    try:  # a plain sum is said to the cent ("62.40 dollars")
        amount = _money(float(a.said), unit, lang)
    except ValueError:
        amount = f"{a.said} {unit}".strip()
    said = {"amount": amount, "unit": unit, "percent" if percent else "ways": b.said}
    if operation == "tip":  # "An 18 percent tip", "A 20 percent tip"
        said["a"] = "An" if re.match(r"8|1[18](\D|$)", b.said) else "A"
    return Expression(MONEY[operation].format(a=a.code, b=b.code), said["amount"]), said


def _ways(code: str) -> bool:
    """Whether a sum can be split this many ways: a whole number, 2 or more."""
    try:
        ways = float(code.strip("()"))
    except ValueError:
        return False
    return ways.is_integer() and ways >= 2


def _money(value: float, unit: str, lang: Language | None = None) -> str:
    """A sum of money as said: to the cent when it has cents ("22.50 dollars"); one of a
    unit in the singular ("1 dollar")."""
    cents = round(value * 100)
    said = str(cents // 100) if cents % 100 == 0 else f"{cents / 100:.2f}"
    if said == "1" and unit and lang is not None:
        unit = str(lang.words["money_one"].get(unit, unit))
    return f"{said} {unit}".strip()


async def calculate(match: Match, turn: Turn) -> str | None:
    operation = match.slots.get("operation")
    if operation in MONEY:
        return await _money_answer(str(operation), match, turn)
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


async def _money_answer(operation: str, match: Match, turn: Turn) -> str | None:
    found, said = _money_sum(operation, match, turn.lang)
    if found is None:
        return None
    observation = await turn.call("calculator", {"expression": found.code})
    if not observation["ok"]:
        return turn.lang.say("calculation_failed", problem=str(observation["error"]))
    value = float(observation["result"]["value"])
    if value < 0:  # "a tip on minus 45", "120 percent off": not money
        return None
    return turn.lang.say(f"calculated_{operation}",
                         value=_money(value, said.pop("unit"), turn.lang), **said)


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    INTENT: (calculate, ("calculator",)),
}
