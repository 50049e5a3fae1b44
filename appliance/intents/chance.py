"""Chance and letters: flip a coin, roll dice, pick a number between two; spell a word.

No tool: the answer is the system's random draw (``secrets``) or the word's own
letters. "how do you spell necessary" spells what speech recognition wrote, which is
the word as a dictionary has it.
"""

from __future__ import annotations

import re
import secrets

from appliance.intents import numbers
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn

#: Dice rolled at once, at most.
MAX_DICE = 10
#: Largest number a pick is between.
MAX_PICK = 10**12
#: Longest word spelled (letters).
MAX_SPELLED = 30


async def coin(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("coin_heads" if secrets.randbelow(2) else "coin_tails")


async def dice(match: Match, turn: Turn) -> str | None:
    count = int(match.slots.get("count") or 1)
    sides = int(match.slots.get("sides") or 6)
    if not 1 <= count <= MAX_DICE or sides not in (4, 6, 8, 10, 12, 20, 100):
        return None
    rolls = [secrets.randbelow(sides) + 1 for _ in range(count)]
    if count == 1:
        return turn.lang.say("die_rolled", value=rolls[0])
    return turn.lang.say("dice_rolled", values=turn.lang.join([str(r) for r in rolls]),
                         total=sum(rolls))


async def pick(match: Match, turn: Turn) -> str | None:
    low, high = (_whole(turn, match.said.get(k, "")) for k in ("low", "high"))
    if low is None or high is None:
        return None
    low, high = min(low, high), max(low, high)
    if high - low < 1:
        return None
    return turn.lang.say("number_picked", value=low + secrets.randbelow(high - low + 1))


async def spell(match: Match, turn: Turn) -> str | None:
    word = match.said.get("word", "").strip(" .,!?\"'")
    letters = [c for c in word if c.isalpha()]
    if not letters or len(letters) > MAX_SPELLED or len(word.split()) > 2 or \
            not re.fullmatch(r"[^\W\d_]+(?:['-][^\W\d_]+)*(?: [^\W\d_]+)?", word) or \
            word.split()[0].lower() in turn.lang.words["not_spelled"]:
        return None  # a sentence, a number, "my name", "it": not a word to spell
    said = ", ".join(c.upper() if c.isalpha() else turn.lang.words["spelled_marks"].get(c, c)
                     for c in word)
    return turn.lang.say("spelled", word=word, letters=said)


def _whole(turn: Turn, text: str) -> int | None:
    """A whole number said in digits or words ("10", "ten", "a hundred"); None else."""
    words = text.lower().replace("-", " minus ").split()
    sign = -1 if words[:1] in (["minus"], ["negative"]) else 1
    words = words[1:] if sign < 0 else words
    digits = numbers.parse_digits(words[0]) if len(words) == 1 else None
    if digits is not None:
        value: float = digits
    else:
        value, used = numbers.parse_words(words, 0, turn.lang.numbers) if words else (0, 0)
        if not used or used != len(words):
            return None
    if not float(value).is_integer() or abs(value) > MAX_PICK:
        return None
    return sign * int(value)


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "ChanceCoin": (coin, ()),
    "ChanceDice": (dice, ()),
    "ChanceNumber": (pick, ()),
    "Spell": (spell, ()),
}
