"""Whether two names sound alike: what speech recognition heard against what was stored.

Whisper writes a short word it is unsure of as a letter ("the eggs timer" heard as
"the X timer", "tea" as "T"). A letter is read as its name (the language's
``letter_names``: x -> "ex"), then each word is reduced to its Soundex code
(first letter, then the consonant classes: "ex" and "eggs" are both E200). The
code is tuned for English spelling; a language without ``letter_names`` compares
letters only.
"""

from __future__ import annotations

import re

from appliance.intents.language import Language

_CLASSES = {**dict.fromkeys("bfpv", "1"), **dict.fromkeys("cgjkqsxz", "2"),
            **dict.fromkeys("dt", "3"), "l": "4", **dict.fromkeys("mn", "5"), "r": "6"}


def soundex(word: str) -> str:
    """American Soundex of one word: "eggs" -> "E200", "tea" -> "T000"."""
    letters = [c for c in word.lower() if "a" <= c <= "z"]
    if not letters:
        return word
    code, last = letters[0].upper(), _CLASSES.get(letters[0], "")
    for c in letters[1:]:
        digit = _CLASSES.get(c, "")
        if digit and digit != last:
            code += digit
        if c not in "hw":  # h and w do not part two letters of one class
            last = digit
    return (code + "000")[:4]


def alike(lang: Language, said: str, stored: str) -> bool:
    """Whether ``said`` and ``stored`` (names without their filler words) have as many
    words and each sounds like its counterpart."""
    a, b = _keys(lang, said), _keys(lang, stored)
    return bool(a) and a == b


def key(lang: Language, word: str) -> str:
    """What ``word`` sounds like: its Soundex code, a letter's by its name."""
    letters = lang.words.get("letter_names")
    if letters is None:
        return word.lower()
    return soundex(letters.get(word.lower(), word) if len(word) == 1 else word)


def _keys(lang: Language, text: str) -> list[str]:
    filler = set(lang.words["filler"])
    text = text.lower().replace("'", "").replace("\u2019", "")  # "egg's" is "eggs"
    return [key(lang, w) for w in re.findall(r"[^\W_]+", text) if w not in filler]
