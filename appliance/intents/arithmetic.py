"""Arithmetic said in words -> a calculator expression and how to read it back.

"twelve times seven" -> ``12*7`` ("12 times 7"); "15 percent of 80" ->
``(15/100)*80``; "square root of 144" -> ``sqrt(144)``; "3 plus 4 times 5" ->
``3+4*5`` (the calculator keeps the usual precedence). The words come from the
language's ``arithmetic:`` section; anything that is not a number or one of
those words means the text is not arithmetic, and :func:`translate` returns None
so the request goes to the next intent or the LLM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.intents.language import Language
from appliance.intents.numbers import parse_digits, parse_words, spoken

#: Longest text read as arithmetic, in characters (the calculator takes 120 of symbols).
MAX_TEXT_CHARS = 300
#: Words before a calculation that may be skipped (noise from speech recognition).
MAX_LEADING_WORDS = 2
#: Longest arithmetic phrase in words ("raised to the power of").
MAX_PHRASE_WORDS = 5
_TOKENS = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?|\.\d+|\*\*|[-+*/^()%=?×÷−]|[^\W\d_]+(?:'[a-z]+)?"
                     r"|[,.!:;]")
_SYMBOLS = {"×": "*", "÷": "/", "−": "-", "^": "**"}
_BINARY = ("+", "-", "*", "/", "**")
#: Functions said before their operand, and the code each makes of it.
_PREFIX = {"sqrt": "sqrt({})", "cbrt": "({})**(1/3)", "neg": "(-{})", "sq": "({})**2",
           "cube": "({})**3", "half": "({})/2", "third": "({})/3", "quarter": "({})/4",
           "double": "({})*2", "triple": "({})*3"}
#: Prefixes that are a fraction of what follows, as a denominator after a number.
_FRACTION_OF = {"half": "/2", "third": "/3", "quarter": "/4"}
_POSTFIX = {"squared": "**2", "cubed": "**3", "percent": "/100"}
_IGNORED = {",", ".", "!", ":", ";", "skip"}
#: A denominator word's symbol: "thirds" is "/3" ("two thirds of 300").
_DENOMINATOR = re.compile(r"/([1-9]\d?)")
#: A proper fraction written with a slash and no spaces, as speech recognition writes "three
#: quarters" ("3/4"): said back in words, not as a division.
_SLASHED = re.compile(r"(?<![\w./])([1-9])/([2-9])(?![\w./])")
#: A hyphen between a word and a number, with no space: speech recognition's way of
#: writing them side by side ("SQRT-16" for "sqrt 16"), not a minus sign.
_GLUED_HYPHEN = re.compile(r"(?<=[^\W\d_])-(?=\d)")


@dataclass(frozen=True)
class Expression:
    """A calculator expression and its spoken form."""

    code: str
    said: str


def _value(text: str) -> int | float:
    """A number token's value: "12", "2.5", and "1e-05" (how a tiny number is written)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def translate(text: str, lang: Language, operand: bool = False) -> Expression | None:
    """``text`` as an Expression, or None when it is not arithmetic; with ``operand`` a
    plain number counts too (the operands of "add 5 to 7")."""
    if len(text) > MAX_TEXT_CHARS:
        return None
    text = text.lower().replace("’", "'")
    for pattern, replacement in lang.rewrites:
        text = pattern.sub(replacement, text)
    text = _GLUED_HYPHEN.sub(" ", text)
    text = _SLASHED.sub(lambda m: _fraction_words(m, lang), text)
    words = [_SYMBOLS.get(t, t) for t in _TOKENS.findall(text.replace("-", " - "))]
    words = _join_hyphenated(words)
    # Up to MAX_LEADING_WORDS words before the arithmetic may be noise ("what in 12 times
    # 7", as speech recognition heard it); what follows must then be a whole calculation.
    for skip in range(min(MAX_LEADING_WORDS, len(words)) + 1):
        if skip and (not words[skip - 1].isalpha()
                     or parse_words(words, skip - 1, lang.numbers)[1]):
            break  # a number is never noise: "three slash four times two" is not 4 times 2
        items = _items(words[skip:], lang)
        if items is not None:
            return _build(items, lang, operand and not skip, lone_fraction=not skip)
    return None


def _fraction_words(m: re.Match[str], lang: Language) -> str:
    """"3/4" -> "3 quarters" where the language has words for that denominator and the
    numerator is below it; else as written (a division)."""
    numerator, denominator = int(m[1]), int(m[2])
    words = lang.spoken.get(f"/{denominator}", "").split("|")
    if numerator >= denominator or len(words) != 2:
        return m[0]
    return f"{numerator} {words[1]}"  # "1 halves": the plural is only a denominator


def combine(operation: str, a: Expression, b: Expression, lang: Language) -> Expression:
    """Two translated operands of a verb form ("add 5 to 7") as one Expression."""
    symbol = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "power": "**",
              "percent_of": "/"}[operation]
    code = f"{_group(a.code)}{symbol}{_group(b.code)}"
    if operation == "percent_of":
        return Expression(f"({code})*100", f"{a.said} {lang.spoken['percent_of']} {b.said}")
    return Expression(code, f"{a.said} {lang.spoken[symbol]} {b.said}")


def _join_hyphenated(words: list[str]) -> list[str]:
    # The split above made "twenty-three" into "twenty - three": put it back as two words.
    out: list[str] = []
    for i, w in enumerate(words):
        if w == "-" and out and out[-1].isalpha() and i + 1 < len(words) \
                and words[i + 1].isalpha() and out[-1] not in ("minus",):
            continue
        out.append(w)
    return out


def _items(words: list[str], lang: Language) -> list[tuple[str, str]] | None:
    """[(kind, value)]: ("num", "12"), ("op", "+"), ("pre", "sqrt"), ("post", "squared"),
    ("open"/"close", ...), ("of", ...); None when a word is neither a number nor ours."""
    table = lang.arithmetic
    items: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        w = words[i]
        if w in _BINARY or w in "()%":
            kind = {"(": "open", ")": "close", "%": "post"}.get(w, "op")
            items.append((kind, "percent" if w == "%" else w))
            i += 1
            continue
        if w in _IGNORED or w in ("?", "="):
            i += 1
            continue
        digits = parse_digits(w)
        value, used = (digits, 1) if digits is not None else parse_words(words, i, lang.numbers)
        if used:
            # "5 million", "2 and a half": digits may start a longer spoken number too.
            more, more_used = parse_words(words, i, lang.numbers)
            if more_used > used:
                value, used = more, more_used
            items.append(("num", repr(value)))
            i += used
            continue
        for n in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            phrase = " ".join(words[i:i + n])
            symbol = table.get(phrase)
            if symbol is None:
                continue
            if symbol in _BINARY:
                # "2 and 2 thirds" is one number: "and" is kept apart from "plus"
                mixed = symbol == "+" and phrase == lang.spoken.get("and")
                items.append(("op", "+and" if mixed else symbol))
            elif symbol in _FRACTION_OF and items and items[-1][0] == "num":
                # "one quarter of 100": a number and its denominator, then "of"
                _fraction(items, _FRACTION_OF[symbol])
                if table.get(words[i + n - 1]) == "of":
                    items.append(("of", "of"))
            elif symbol in _PREFIX:
                items.append(("pre", symbol))
            elif symbol in _POSTFIX:
                items.append(("post", symbol))
            elif symbol in ("(", ")"):
                items.append(("open" if symbol == "(" else "close", symbol))
            elif symbol == "of":
                items.append(("of", symbol))
            elif _DENOMINATOR.fullmatch(symbol) and items and items[-1][0] == "num":
                _fraction(items, symbol)  # "two thirds": 2/3
            elif symbol != "skip":
                return None
            i += n
            break
        else:
            return None
    return items


def _fraction(items: list[tuple[str, str]], denominator: str) -> None:
    """The number last in ``items`` as the numerator of ``denominator`` ("/3"), and with
    a whole number and "and" before it one number ("2 and 2 thirds": 2+2/3)."""
    items[-1] = ("frac", f"{items[-1][1]}{denominator}")
    if len(items) >= 3 and items[-2] == ("op", "+and") and items[-3][0] == "num":
        items[-3:] = [("frac", f"{items[-3][1]}+{items[-1][1]}")]


def _build(items: list[tuple[str, str]], lang: Language, operand: bool,
           lone_fraction: bool = False) -> Expression | None:
    """Check the order of the items and write the expression; None when it is not one."""
    code: list[str] = []
    said: list[str] = []
    expect_operand = True
    operations = numbers = depth = fractions = 0
    pending: list[str] = []  # prefix functions waiting for their operand
    last_op = -1  # where in ``code`` the last operator outside brackets is
    for idx, (kind, value) in enumerate(items):
        if expect_operand:
            if kind == "op" and value == "-":
                kind, value = "pre", "neg"
            if kind == "pre":
                pending.append(value)
                said.append(lang.spoken[value])
                operations += value != "neg"
                continue
            if kind == "open":
                if pending:
                    return None  # "square root of (..." is more than we read back well
                code.append("(")
                said.append(lang.spoken.get("(", ""))
                depth += 1
                continue
            if kind not in ("num", "frac"):
                return None
            numbers += 1
            if kind == "frac":  # "2/3" said "2 thirds"; "1+2/3" "1 and 2 thirds"
                whole, _, value = value.rpartition("+")
                top, bottom = value.split("/")
                text, top = f"({_number(top)}/{bottom})", spoken(_value(top))[0]
                fraction = f"{top} {lang.spoken['/' + bottom].split('|')[top != '1']}"
                if whole:
                    text = f"({_number(whole)}+{text})"
                    fraction = f"{spoken(_value(whole))[0]} {lang.spoken['and']} {fraction}"
                said.append(fraction)
                fractions += 1
            else:
                text = _number(value)
                said.append(spoken(_value(value))[0])
            code.append(_wrap(pending, text))
            pending = []
            expect_operand = False
            continue
        if kind == "op":
            value = "+" if value == "+and" else value
            if not depth:
                last_op = len(code)
            code.append(value)
            said.append(lang.spoken[value])
            operations += 1
            expect_operand = True
        elif kind == "post" and value == "percent" and not depth and last_op > 0 \
                and code[last_op] in ("+", "-") and items[idx + 1:idx + 2] != [("of", "of")]:
            # "200 plus 15 percent" is 230, as on a calculator: the percent is of what
            # comes before the sign (not 200.15).
            left, sign, right = "".join(code[:last_op]), code[last_op], "".join(code[last_op + 1:])
            code = [f"({left})*(1{sign}({right})/100)"]
            last_op = -1
            said.append(lang.spoken[value])
            operations += 1
        elif kind == "post":
            code[-1] = f"({code[-1]}{_POSTFIX[value]})"
            said.append(lang.spoken[value])
            operations += 1
        elif kind == "of" and idx > 0 and (items[idx - 1] == ("post", "percent")
                                           or items[idx - 1][0] == "frac"):
            code.append("*")
            said.append(lang.spoken["of"])
            operations += items[idx - 1][0] == "frac"  # "2 thirds of 300": a calculation
            expect_operand = True
        elif kind == "close" and depth > 0:
            code.append(")")
            said.append(lang.spoken.get(")", ""))
            depth -= 1
        else:
            return None
    if expect_operand or depth or not numbers or not (
            operations or operand or (lone_fraction and fractions)):
        return None  # a fraction alone is one to work out ("what is 3/4"), if said so
    return Expression("".join(code), " ".join(w for w in said if w))


def _wrap(functions: list[str], operand: str) -> str:
    for fn in reversed(functions):
        operand = _PREFIX[fn].format(operand)
    return operand


def _number(value: str) -> str:
    return value[:-2] if value.endswith(".0") else value


def _group(code: str) -> str:
    return code if re.fullmatch(r"[\d.]+", code) else f"({code})"
