"""Unit conversions, from the calculator tool: "how many grams in a pound" -> "A pound is
about 454 grams."; "convert 350 fahrenheit to celsius" -> "350 degrees Fahrenheit is about
177 degrees Celsius.".

The templates (``sentences/<lang>/convert.yaml``) give the two units and the amount
as the user said it; :mod:`appliance.intents.units` gives the exact expression, which
the calculator works out, so the tool call is on record as for any other sum. The
value is said to three significant figures ("about" when that rounds it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.intents import arithmetic, gas_mark, ingredients, units
from appliance.intents.language import Language
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn
from appliance.tools.base import ToolError
from appliance.tools.calculator import evaluate

INTENT = "Convert"
#: Largest amount and result read out; beyond it the request goes on (to the LLM).
MAX_AMOUNT = 1e12


@dataclass(frozen=True)
class Amount:
    code: str
    """A calculator expression."""
    said: str
    """The amount as the user said it ("two and a half", "1/2", "an")."""
    singular: bool
    """Whether the unit after it is said in the singular: one, or a fraction said as one
    ("half a cup", "a quarter pound", "1/2 cup"); a decimal is plural ("0.5 cups")."""


def amount(text: str, lang: Language) -> Amount | None:
    """The amount before a unit ("350", "two and a half", "half a", "an", "1/2"), or None
    when ``text`` is not one."""
    said = " ".join(text.replace("°", " ").split())
    words = said.lower()
    # Said back as a voice reads it well: "1/2" is "one half" (not "one slash two"),
    # ".5" is "0.5" (not "dot five").
    fractions = {str(k): str(v) for k, v in lang.words["fractions_said"].items()}
    said = re.sub(r"\b(\d+)\s+(\d+/\d+)\b", lambda m: f"{m.group(1)} and " + re.sub(
        r"^one ", "a ", fractions.get(m.group(2), m.group(2))), said)  # "1 and a half"
    said = re.sub(r"\b\d+/\d+\b", lambda m: fractions.get(m.group(0), m.group(0)), said)
    said = re.sub(r"(?<![\d.])\.(?=\d)", "0.", said)
    table = {str(k): str(v) for k, v in lang.words["amounts"].items()}
    for tail in [""] + [f" {t}" for t in lang.words["amount_tails"]]:
        if not words.endswith(tail) or (tail and words == tail.strip()):
            continue
        head = words[:len(words) - len(tail)] if tail else words
        code = table.get(head)
        mixed = re.fullmatch(r"(\d+)\s+(\d+)/(\d+)", head)  # "1 1/2"
        if code is None and mixed is not None and int(mixed.group(3)) > 0:
            code = f"{mixed.group(1)}+{mixed.group(2)}/{mixed.group(3)}"
        if code is None and not tail:
            found = arithmetic.translate(head, lang, operand=True)
            code = found.code if found is not None else None
        if code is None:
            continue
        try:
            value = evaluate(code)
        except ToolError:
            return None
        if not 0 < abs(value) < MAX_AMOUNT:
            return None
        singular = abs(value) == 1 or (abs(value) < 1 and "." not in head)
        return Amount(code, said, singular)
    return None


def _units(match: Match) -> tuple[str, str] | None:
    source, target = match.slots.get("source"), match.slots.get("target")
    if not isinstance(source, str) or not isinstance(target, str):
        return None
    return source, target


def _amount_text(match: Match) -> str:
    """The amount's words: as said, or the list's value ("a cup and a half": "one and a
    half")."""
    return str(match.slots.get("amount") or match.said.get("amount") or "")


def complete(match: Match, lang: Language) -> bool:
    """Whether the match is a whole conversion (its amount reads as one)."""
    if match.slots.get("gas"):
        return "gas_mark" in match.slots or amount(_amount_text(match), lang) is not None
    return _units(match) is not None and amount(_amount_text(match), lang) is not None


def _compound(match: Match, found: Amount, lang: Language) -> Amount | None:
    """"5 foot 10", "12 stone 4 pounds": the amount in the larger unit, or None when the
    smaller unit said is not the larger one's (``words.compound_units``)."""
    major = str(match.slots.get("source"))
    minor_unit, per = lang.words["compound_units"][major]
    said_unit = match.slots.get("minor_unit")
    if said_unit is not None and said_unit != minor_unit:
        return None
    minor = match.slots["minor"]
    if not 0 <= minor < per or evaluate(found.code) <= 0:  # "6 foot 15", "minus 2 foot 3"
        return None
    words = lang.words["measures"]
    plural = words[major][0 if found.singular else 1]
    return Amount(f"({found.code})+({minor})/{per}",
                  f"{found.said} {plural} {match.said.get('minor', minor)} "
                  f"{words[minor_unit][0 if minor == 1 else 1]}", False)


async def convert(match: Match, turn: Turn) -> str | None:
    if match.slots.get("gas"):
        return gas_mark.answer(match, turn)
    names = _units(match)
    found = amount(_amount_text(match), turn.lang)
    if names is None or found is None:
        return None
    compound = "minor" in match.slots
    if compound:
        found = _compound(match, found, turn.lang)
        if found is None:
            return None
    lang = turn.lang
    measures, kinds = lang.words["measures"], lang.words["measure_kinds"]
    said_food = str(match.slots.get("ingredient") or "")
    if ingredients.no_such(names, said_food):
        return None  # "a stick of sugar"
    food = ingredients.named(names, said_food, lang.words["ingredients"])
    try:
        source, target = ingredients.resolve(*names, food, bool(match.slots.get("weigh"))) \
            if food else units.resolve(*names)
    except units.Mismatch as exc:
        if set(exc.kinds) == {"mass", "volume"}:  # "how many grams in a cup": of what?
            return lang.say("convert_of_what")
        return lang.say("convert_mismatch", source=measures[names[0]][1],
                        target=measures[names[1]][1], source_kind=kinds[exc.kinds[0]],
                        target_kind=kinds[exc.kinds[1]])
    worked = units.as_measured(source, target, turn.about.measures)  # said "pint" still
    code = ingredients.expression(found.code, *worked, food) if food else \
        units.expression(found.code, *worked)
    observation = await turn.call("calculator", {"expression": code})
    if not observation["ok"]:
        problem = str(observation["error"])
        if problem.startswith("invalid arguments"):
            return None  # too long an amount for the calculator: the LLM may manage
        return lang.say("calculation_failed", problem=problem)
    exact = observation["result"]["value"]
    if not abs(exact) < MAX_AMOUNT:
        return None  # a number no kitchen needs, too long to say: the LLM may manage
    value = units.rounded(exact)
    said = units.written(value)
    if said.startswith("-"):
        said = f"{lang.spoken['neg']} {said[1:]}"
    singular_source, plural_source = measures[source.name]
    singular_target, plural_target = measures[target.name]
    # An ingredient's weight from its volume is about, however round the number.
    key = "converted" if value == exact and source.kind == target.kind else "converted_about"
    unit = "" if compound else singular_source if found.singular else plural_source
    amount_said = found.said
    if amount_said.lower() in ("a", "an"):  # as the unit said back sounds: "a fluid ounce"
        amount_said = "an" if re.match(turn.lang.words["an_before"], unit) else "a"
    of = f" {lang.words['ingredient_of']} {food['name']}" if food else ""  # "of flour"
    return lang.say(key, amount=f"{amount_said} {unit}{of}".strip(), value=said,
                    unit=singular_target if abs(value) == 1 else plural_target)


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    INTENT: (convert, ("calculator",)),
}
