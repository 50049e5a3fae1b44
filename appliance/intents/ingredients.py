"""A cook's weight and volume of one ingredient: "how many cups is 200 grams of flour" ->
"200 grams of flour is about 1.6 cups."; "how many grams in a cup of butter" -> 227.

A weight and a volume are different things (:class:`appliance.intents.units.Mismatch`)
until the ingredient is named: then its grams per US cup (``words.ingredients``, mostly
USDA's household measures) makes one of the other. "Ounces" of a dry
ingredient are a weight ("8 ounces of flour"), of a liquid fluid ounces ("8 ounces of
milk"). Units of the same kind convert as always, the ingredient only said back.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from appliance.intents import units

#: Millilitres in the US cup an ingredient's grams are given for.
CUP_ML = units.UNITS["cup"].scale
#: The unit only butter comes in, and butter (``words.ingredients``' key).
STICK, BUTTER = "stick", "butter"


def resolve(source: str, target: str, ingredient: dict[str, Any], weigh: bool = False,
            ) -> tuple[units.Unit, units.Unit]:
    """The units meant by two unit names said of ``ingredient``: "ounce" is a weight,
    or a fluid ounce for a liquid (``liquid: true``) unless asked what it ``weigh``s;
    "degrees" a temperature; Mismatch when they are neither of one kind nor a weight and
    a volume."""
    def one(name: str) -> units.Unit:
        if name == "ounce" and ingredient.get("liquid") and not weigh:
            return units.UNITS["fluid_ounce"]
        return units.UNITS[units.AMBIGUOUS.get(name, (name,))[0]]
    s, t = one(source), one(target)
    if s.kind != t.kind and {s.kind, t.kind} != {"mass", "volume"}:
        raise units.Mismatch((s.kind, t.kind))
    return s, t


def named(names: tuple[str, str], said: str, table: dict[str, dict[str, Any]],
          ) -> dict[str, Any] | None:
    """The ingredient a conversion is of: the one said, or butter for a stick said alone
    ("how many grams in a stick"); None for none."""
    return table.get(said or (BUTTER if STICK in names else ""))


def no_such(names: tuple[str, str], said: str) -> bool:
    """A stick of anything but butter ("a stick of sugar"): no such measure."""
    return STICK in names and said not in ("", BUTTER)


def expression(amount: str, source: units.Unit, target: units.Unit,
               ingredient: dict[str, Any]) -> str:
    """The calculator expression of ``amount`` of the ingredient in ``source`` as
    ``target``, through its grams per cup where one is a weight and the other a volume."""
    if source.kind == target.kind:
        return units.expression(amount, source, target)
    grams_per_ml = Fraction(str(ingredient["grams_per_cup"])) / CUP_ML
    factor = source.scale / target.scale * (
        grams_per_ml if source.kind == "volume" else 1 / grams_per_ml)
    return f"({amount})*{factor.numerator}/{factor.denominator}"
