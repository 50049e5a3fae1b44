"""Units of measure and the calculator expression that converts between two of them.

Each unit is a scale (and, for temperatures, an offset) to its kind's base unit:
grams, metres, millilitres, seconds, kilometres per hour, kelvin. Kitchen measures
are US customary (a cup is 236.6 ml, a pint 16 US fluid ounces), as in the voice's
en_US, unless the box measures in imperial units (``intents.measures``; :func:`measures`):
then a pint, a quart, a gallon and a fluid ounce said bare are the imperial ones (a pint
is 20 imperial fluid ounces, 568 ml). "US pint" and "imperial pint" are those whatever
the setting. The scales are exact fractions, so the expression the calculator gets is
exact too (``(350)*5/9-160/9``) and rounding happens once, when the answer is said.

Two words name more than one unit and are settled by the other side: "ounces" is a
fluid ounce next to a volume ("how many ounces in a cup"), and "degrees" alone is
Celsius or Fahrenheit, whichever the other side is not.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

from appliance.errors import ApplianceError

F = Fraction


@dataclass(frozen=True)
class Unit:
    name: str
    kind: str
    scale: Fraction
    """Base units in one of this unit."""
    offset: Fraction
    """Base units at zero of this unit (temperatures)."""


def _units(kind: str, **scales: Fraction | tuple[Fraction, Fraction]) -> dict[str, Unit]:
    out = {}
    for name, value in scales.items():
        scale, offset = value if isinstance(value, tuple) else (value, F(0))
        out[name] = Unit(name, kind, scale, offset)
    return out


_INCH = F(254, 10000)  # metres
_POUND = F(45359237, 100000)  # grams
_FLUID_OUNCE = F(295735295625, 10**10)  # millilitres: 231 cubic inches / 128
_IMPERIAL_OUNCE = F(284130625, 10**7)  # millilitres: 4.54609 litres / 160
UNITS: dict[str, Unit] = {
    **_units("mass", milligram=F(1, 1000), gram=F(1), kilogram=F(1000), ounce=_POUND / 16,
             pound=_POUND, stone=_POUND * 14, tonne=F(10**6)),
    **_units("length", millimetre=F(1, 1000), centimetre=F(1, 100), metre=F(1),
             kilometre=F(1000), inch=_INCH, foot=_INCH * 12, yard=_INCH * 36,
             mile=_INCH * 63360),
    **_units("volume", millilitre=F(1), centilitre=F(10), decilitre=F(100), litre=F(1000),
             teaspoon=_FLUID_OUNCE / 6, tablespoon=_FLUID_OUNCE / 2,
             fluid_ounce=_FLUID_OUNCE, cup=_FLUID_OUNCE * 8, stick=_FLUID_OUNCE * 4,
             pint=_FLUID_OUNCE * 16,
             quart=_FLUID_OUNCE * 32, gallon=_FLUID_OUNCE * 128,
             us_fluid_ounce=_FLUID_OUNCE, us_pint=_FLUID_OUNCE * 16,
             us_quart=_FLUID_OUNCE * 32, us_gallon=_FLUID_OUNCE * 128,
             imperial_fluid_ounce=_IMPERIAL_OUNCE, imperial_pint=_IMPERIAL_OUNCE * 20,
             imperial_quart=_IMPERIAL_OUNCE * 40, imperial_gallon=_IMPERIAL_OUNCE * 160),
    **_units("temperature", celsius=(F(1), F(27315, 100)),
             fahrenheit=(F(5, 9), F(27315, 100) - F(160, 9)), kelvin=F(1)),
    **_units("time", second=F(1), minute=F(60), hour=F(3600), day=F(86400),
             week=F(604800)),
    **_units("speed", kilometre_per_hour=F(1), mile_per_hour=_INCH * 63360 / 1000,
             metre_per_second=F(36, 10), knot=F(1852, 1000)),
}
#: A word for more than one unit: its units, the first the one meant when the other side
#: does not settle it.
AMBIGUOUS: dict[str, tuple[str, ...]] = {
    "ounce": ("ounce", "fluid_ounce"),
    "degree": ("celsius", "fahrenheit"),
}
#: The imperial unit a bare word means on a box that measures in imperial units.
IMPERIAL: dict[str, str] = {"fluid_ounce": "imperial_fluid_ounce", "pint": "imperial_pint",
                            "quart": "imperial_quart", "gallon": "imperial_gallon"}
#: Kitchen measures that stay US customary on an imperial box, and keep a fluid ounce
#: next to them a US one ("how many ounces in a cup": 8; a pint is still 2.4 cups).
US_KITCHEN = frozenset({"cup", "tablespoon", "teaspoon", "stick"})
#: Timezones whose households measure a pint as an imperial one (intents.measures auto).
IMPERIAL_ZONES = frozenset({"Europe/London", "Europe/Belfast", "Europe/Dublin",
                            "Europe/Isle_of_Man", "Europe/Jersey", "Europe/Guernsey",
                            "Europe/Gibraltar", "GB", "GB-Eire", "Eire"})


def as_measured(source: Unit, target: Unit, measured: str) -> tuple[Unit, Unit]:
    """The units worked with on a box that measures so ("us" or "imperial"): there a bare
    pint is an imperial one, but a fluid ounce beside a cup or a spoon stays a US one
    ("how many ounces in a cup": 8)."""
    if measured != "imperial":
        return source, target
    kitchen = bool({source.name, target.name} & US_KITCHEN)
    s, t = (u if kitchen and u.name == "fluid_ounce" else UNITS[IMPERIAL.get(u.name, u.name)]
            for u in (source, target))
    return s, t


def measures(setting: str, zone: str = "") -> str:
    """"us" or "imperial": ``setting`` (intents.measures), where "auto" is imperial in
    the UK's and Ireland's timezones (``zone``, tools.timezone; empty: the system's, from
    ``TZ`` or /etc/localtime) and US customary elsewhere."""
    if setting != "auto":
        return setting
    zone = zone or os.environ.get("TZ", "").lstrip(":")
    if not zone:
        target = os.path.realpath("/etc/localtime")
        zone = target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else ""
    return "imperial" if zone in IMPERIAL_ZONES else "us"


#: Significant figures said, and the whole numbers said in full however long (up to this
#: many digits: "1609 metres", "604800 seconds").
FIGURES = 3
WHOLE_DIGITS = 6


class Mismatch(ApplianceError):
    """The two units measure different things; ``kinds`` names them."""

    def __init__(self, kinds: tuple[str, str]) -> None:
        super().__init__(f"{kinds[0]} and {kinds[1]}")
        self.kinds = kinds


def resolve(source: str, target: str) -> tuple[Unit, Unit]:
    """The units meant by the words' unit names ``source`` and ``target``; Mismatch when
    they measure different things, KeyError for a name not in :data:`UNITS`."""
    sources = [UNITS[n] for n in AMBIGUOUS.get(source, (source,))]
    targets = [UNITS[n] for n in AMBIGUOUS.get(target, (target,))]
    for s in sources:
        for t in targets:
            if s.kind == t.kind and (s is not t or source == target):
                return s, t
    raise Mismatch((sources[0].kind, targets[0].kind))


def expression(amount: str, source: Unit, target: Unit) -> str:
    """The calculator expression of ``amount`` (an expression) in ``source`` as
    ``target``: ``(amount)*a/b+c/d`` with the exact fractions."""
    factor = source.scale / target.scale
    shift = (source.offset - target.offset) / target.scale
    code = f"({amount})*{factor.numerator}/{factor.denominator}"
    if shift:
        sign = "+" if shift > 0 else "-"
        code += f"{sign}{abs(shift.numerator)}/{shift.denominator}"
    return code


def _places(value: float) -> int:
    """Decimal places that keep :data:`FIGURES` significant figures of ``value``, never
    cutting a whole number of up to :data:`WHOLE_DIGITS` digits ("1609 meters"); negative
    rounds to tens, hundreds ("1610000 millimeters")."""
    places = FIGURES - 1 - math.floor(math.log10(abs(value)))
    return 0 if places < 0 and abs(value) < 10**WHOLE_DIGITS else places


def rounded(value: float) -> float:
    """``value`` to :data:`FIGURES` significant figures (see :func:`_places`)."""
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, _places(value))


def written(value: float) -> str:
    """A rounded value written out, never with an exponent: 0.000264, 454, 1610000."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    places = max(0, _places(value))
    text = f"{value:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
