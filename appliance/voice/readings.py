"""What Whisper's readings say, as text: which of the beam's readings to keep
(``readings``), a restart after the utterance cut (``unrepeated``), the words a second
decoding adds (``extension``). Pure functions; ``stt`` uses them (its module docstring
says why each is needed).
"""

from __future__ import annotations

import difflib
import itertools
import re
import unicodedata

#: How far below the best reading's score (mean log probability per token) another may
#: be and still be kept as an alternative.
ALTERNATIVE_MARGIN = 1.0
#: The marks Whisper ends a sentence with; a trailing ellipsis is speech that trails off,
#: not an end (``ends_sentence``).
SENTENCE_ENDS = ".?!。？！؟।"
_SENTENCE_END = re.compile(f"[{re.escape(SENTENCE_ENDS)}]")
#: The share of a reading's words a reading without the repetition penalty must have, in
#: order, for its words after them to be added (``extension``).
EXTENDED_SAME = 0.8


def unrepeated(text: str) -> str:
    """``text`` without a start of itself again after a sentence's end: on a fitted window
    Whisper now and then goes on after the utterance with its beginning ("Set a timer for 10
    minutes. Set a tim", cut off by the length bound). Only the same words count (case and
    punctuation aside), and a last word cut short only where the text stops without a
    sentence's end: "Set a timer for 5 minutes. Set a timer for 10 minutes" and "Remind me
    at 10. Remind me at 1." keep both."""
    for end in _SENTENCE_END.finditer(text):
        if text[end.end():end.end() + 1] != " ":
            continue
        head, tail = _words(text[:end.end()]), _words(text[end.end():])
        if not tail or len(tail) > len(head) or head[:len(tail) - 1] != tail[:-1]:
            continue
        last = head[len(tail) - 1]
        if last == tail[-1] or (not ends_sentence(text) and last.startswith(tail[-1])):
            return text[:end.end()]
    return text


def extension(text: str, longer: str) -> str:
    """The words ``longer`` has after ``text``'s last one, up to the end of that sentence,
    or "": at least ``EXTENDED_SAME`` of ``text``'s words must be found in ``longer`` in
    order (the other decoding may hear "egg" for "eggs"), ``text``'s last word among them,
    and not at a sentence's end (what follows one is a restart or a "Thank you." Whisper
    likes to add, not the words the penalty held back). Only words are added: ``text``'s
    own, numbers and all, stay as they were."""
    have = _words(text)
    spoken = [(w, i) for i, raw in enumerate(longer.split()) if (w := _word(raw))]
    more = [w for w, _ in spoken]
    if not have or len(more) <= len(have):
        return ""
    blocks = difflib.SequenceMatcher(None, have, more, autojunk=False).get_matching_blocks()
    last = blocks[-2] if len(blocks) > 1 else None
    if last is None or last.a + last.size != len(have) or last.b + last.size >= len(more) \
            or sum(b.size for b in blocks) < EXTENDED_SAME * len(have):
        return ""
    raw = longer.split()
    start = spoken[last.b + last.size - 1][1] + 1
    if ends_sentence(raw[start - 1]):
        return ""
    added: list[str] = []
    for word in raw[start:]:
        added.append(word)
        if ends_sentence(word):
            break
    return " ".join(added)


def ends_sentence(text: str) -> bool:
    text = text.rstrip()
    return bool(text) and text[-1] in SENTENCE_ENDS and not text.endswith(("...", "…"))


def stops_short(text: str, longer: str) -> bool:
    """``text``'s words are the first of ``longer``'s (a reading that stops short of it)."""
    have, more = _words(text), _words(longer)
    return len(have) < len(more) and more[:len(have)] == have


def _words(text: str) -> list[str]:
    return [w for w in map(_word, text.split()) if w]


def _word(text: str) -> str:
    """A word for comparing: lower case, without punctuation ("Wi-Fi" is "wifi"), but a
    mark between digits stays ("2.5" is not "25", "7:30" not "730")."""
    text = text.lower()
    return "".join(c for i, c in enumerate(text)
                   if c.isalnum() or c == "%" or (c in ".,:" and 0 < i < len(text) - 1
                                                  and text[i - 1].isdigit()
                                                  and text[i + 1].isdigit())
                   or (not c.isascii() and not unicodedata.category(c).startswith("P")))


def readings(texts: list[str], scores: list[float]) -> list[str]:
    """The best text, then the others within ALTERNATIVE_MARGIN of its score that read
    differently (not just in case or punctuation), best first; but a reading whose only
    difference from the best is a number Whisper wrote glued (below) comes first."""
    out = texts[:1]
    seen = {_reading(t) for t in out}
    for text, score in zip(texts[1:], scores[1:], strict=False):
        key = _reading(text)
        if text and key not in seen and score >= scores[0] - ALTERNATIVE_MARGIN:
            seen.add(key)
            out.append(text)
    for i, text in enumerate(out[1:], 1):
        if _unglued(out[0], text):
            out.insert(0, out.pop(i))
            break
    return out


_NUMBER = re.compile(r"\d+(?:,\d{3})*")


def _unglued(best: str, other: str) -> bool:
    """``other`` is ``best`` with one glued number written as it was said.

    Whisper base writes "two thousand five hundred and eighty" as "250080" (the digits of
    2500 and of 80 side by side), "one thousand five hundred and eighty" as "150080" and
    "four thousand seven hundred and eleven" as "4,700-11", with the right "2580", "1,580"
    or "4711" among its runners-up. A glued number is two parts, side by side or with a
    hyphen or space between, the first ending in at least as many zeros as the second has
    digits; written right, it is their sum.
    """
    said = _reading(other)
    return any(_reading(candidate) == said for candidate in _repairs(best))


def _repairs(text: str) -> list[str]:
    """``text`` with one glued number (see ``_unglued``) written as the sum of its parts."""
    out = []
    numbers = list(_NUMBER.finditer(text))
    for m in numbers:
        for total in _glued_sums(m.group().replace(",", "")):
            out.append(f"{text[:m.start()]}{total}{text[m.end():]}")
    for a, b in itertools.pairwise(numbers):
        head, tail = a.group().replace(",", ""), b.group().replace(",", "")
        if text[a.end():b.start()] in ("-", " ") and _glue(head, tail):
            out.append(f"{text[:a.start()]}{int(head) + int(tail)}{text[b.end():]}")
    return out


def _glue(head: str, tail: str) -> bool:
    return head[0] != "0" and tail[0] != "0" and head.endswith("0" * len(tail))


def _glued_sums(digits: str) -> set[int]:
    """What ``digits`` would be if two spoken numbers were written side by side."""
    return {int(digits[:cut]) + int(digits[cut:]) for cut in range(1, len(digits))
            if _glue(digits[:cut], digits[cut:])}


def _reading(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())
