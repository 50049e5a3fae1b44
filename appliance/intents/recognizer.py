"""Text -> ranked intent matches, with hassil and one language's sentence templates.

Matching is CPU work of a few milliseconds (the first match of a number range
builds its word table: about 0.2 s, done by :meth:`Recognizer.warm_up`), so
callers run it in a worker thread.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from hassil import Intents, RecognizeResult, recognize_ranked

from appliance.intents.language import Language, LanguageError

#: Longest text matched; a request longer than this is not an everyday one.
MAX_TEXT_CHARS = 300
#: Matches looked at per request (hassil ranks them; handlers may decline).
MAX_MATCHES = 12
#: Texts whose matches are kept: a voice turn asks about the same transcript up to three
#: times (is it whole yet, which reading to answer, the answer).
REMEMBERED = 16
#: A sentence that exercises the number ranges, so their word tables are built at start.
WARM_UP = ("timer for 5 minutes", "timer for five minutes", "timer for 1 hour",
           "timer for 30 seconds", "timer for two and a half minutes")


@dataclass(frozen=True)
class Match:
    """One way the text matched an intent."""

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    """Slot values: numbers for ranges, the list's ``out`` for lists, text for wildcards."""
    said: dict[str, str] = field(default_factory=dict)
    """Each slot's words as the user wrote them (original case and punctuation)."""
    wildcards: tuple[str, ...] = ()
    """The slots that took any words (a name, a fact): the request may not be over yet."""
    text: str = ""
    """The text matched."""


class Recognizer:
    """The hassil intents of one language."""

    def __init__(self, lang: Language) -> None:
        self.lang = lang
        try:
            self.intents = Intents.from_files(lang.sentence_files)
        except Exception as exc:  # hassil raises many kinds on a bad template
            raise LanguageError(f"sentences/{lang.code}: {exc}") from None
        self._recent: OrderedDict[str, tuple[Match, ...]] = OrderedDict()
        openers = sorted({str(w) for key in ("openers", "fillers")
                          for w in lang.words.get(key) or ()}, key=len, reverse=True)
        names = sorted((str(w) for w in lang.words.get("opener_names") or ()), key=len,
                       reverse=True)
        self._openers = re.compile(
            r"(?:\s*(?:{})(?:\s+(?:{}))?(?:(?P<mark>\s*[,.!;:]+\s*|\s+[-\u2013\u2014]+\s+)|\s+))+"
            r"(?=\w)".format("|".join(map(re.escape, openers)),
                              "|".join(map(re.escape, names)) or "(?!)"),
            re.I) if openers else None
        hedges = [str(w) for w in lang.words.get("hedges") or ()]
        counted = [str(w) for w in lang.words.get("hedged") or ()]
        self._hedges = re.compile(r"\b(?:{})\s+(?=\d|(?:{})\b)".format(
            "|".join(map(re.escape, hedges)), "|".join(map(re.escape, counted)) or "(?!)"),
            re.I) if hedges else None
        self._gerunds = {str(k).lower(): str(v) for k, v in
                         (lang.words.get("gerunds") or {}).items()}
        closers = sorted((str(w) for w in lang.words.get("closers") or ()), key=len,
                         reverse=True)
        self._closers = re.compile(r"(?<=\w)[\s,;:.!-]+(?P<closer>{})[\s.!?]*$".format(
            "|".join(map(re.escape, closers))), re.I) if closers else None
        self._courtesy = {str(w).lower() for w in lang.words.get("closers_courtesy") or ()}
        glued = sorted((str(w) for w in lang.words.get("glued_units") or ()), key=len,
                       reverse=True)
        self._glued = re.compile(r"\b(\d+(?:\.\d+)?)({})\b".format(
            "|".join(map(re.escape, glued))), re.I) if glued else None
        self._kept_before = {str(w).lower() for w in lang.words.get("courtesy_said") or ()}

    def names(self) -> list[str]:
        return sorted(self.intents.intents)

    def warm_up(self) -> None:
        for text in WARM_UP:
            self.recognize(text)

    def recognize(self, text: str) -> list[Match]:
        """Matches of ``text``, best first; [] when none (or the text is too long).
        Not thread-safe: one worker thread calls it."""
        text = " ".join(text.split())
        if not text or len(text) > MAX_TEXT_CHARS:
            return []
        known = self._recent.get(text)
        if known is not None:
            self._recent.move_to_end(text)
            return list(known)
        results = recognize_ranked(text, self.intents, language=self.lang.code)
        matches: list[Match] = []
        for result in results:
            if _inside_a_word(result, text):
                continue
            match = _match(result, text)
            if match not in matches:
                matches.append(match)
            if len(matches) >= MAX_MATCHES:
                break
        self._recent[text] = tuple(matches)
        if len(self._recent) > REMEMBERED:
            self._recent.popitem(last=False)
        return matches

    def candidates(self, text: str) -> tuple[str, ...]:
        """The texts to match for ``text``, in order (matching: run it in a worker thread).
        Greetings and fillers that open it (``words.openers``, ``words.fillers``, one or
        more: "hey um actually", maybe with a name from ``words.opener_names``) are passed
        over: first when punctuation or a dash sets them apart ("Hello, what time is it"
        -> "what time is it", then the whole) or when the rest reads with no open words
        where the whole needs them ("actually set a timer for 10 minutes" is no timer named
        "actually set a"), else only after the whole ("hello kitty timer for 5 minutes",
        "right burner timer for 10 minutes": the whole, then the rest); a verb after "would
        you mind" is read plain ("cancelling" -> "cancel", ``words.gerunds``). Then each
        without a hedge before a number ("for like five minutes", "at around 7":
        ``words.hedges``). Thanks after a request (``words.closers``) are passed over as
        fillers are: "skip tomorrow's alarm, thank you". Last, each with a number written
        onto its unit set apart ("100g" -> "100 g", ``words.glued_units``)."""
        found = self._openers.match(text) if self._openers is not None else None
        rest = text[found.end():].strip() if found is not None else ""
        texts = [text]
        if rest:
            assert found is not None
            first, _, after = rest.partition(" ")
            plain = self._gerunds.get(first.lower())
            if plain and re.search(r"\bmind\W*$", text[:found.end()], re.I):
                rest = f"{plain} {after}".strip()  # only after "would you mind"
            texts = [rest, text] if found.group("mark") is not None or \
                self._plainer(rest, text) else [text, rest]
        if self._closers is not None:  # "skip tomorrow's alarm, thank you"
            for t in list(texts):
                closer = self._closers.search(t)
                if closer is None:
                    continue
                trimmed, at = t[:closer.start()], texts.index(t)
                # "please" is no fact's or reminder's last word (but "say please" is);
                # "thank you" may be
                said = closer.group("closer").lower()
                last = trimmed.split()[-1].lower() if trimmed.split() else ""
                before = (said in self._courtesy and last not in self._kept_before) or \
                    self._plainer(trimmed, t)
                texts.insert(at if before else at + 1, trimmed)
        if self._hedges is not None:
            texts += [self._hedges.sub("", t) for t in texts]
        if self._glued is not None:  # "100g of flour in cups": after the text as written
            texts += [self._glued.sub(r"\1 \2", t) for t in texts]
        return tuple(dict.fromkeys(texts))

    def _plainer(self, rest: str, whole: str) -> bool:
        """Whether ``rest`` matches with no open-ended words where ``whole`` needs some
        (or does not match at all)."""
        first = next(iter(self.recognize(rest)), None)
        if first is None or first.wildcards:
            return False
        matched = next(iter(self.recognize(whole)), None)
        return matched is None or bool(matched.wildcards)


def _trimmed(words: str) -> str:
    """A slot's words without the marks around them; a point before a digit stays (".5")."""
    words = words.strip(" ,?!;:").rstrip(".")
    return words.lstrip(".") if not re.match(r"\.+\d", words) else words


def _written(text: str, span: tuple[int, int] | None, heard: str) -> str:
    """A slot's words as ``text`` has them. hassil's span can be off by a character in
    the original text (after a comma, in "Add, call the plumber to my to-do list" it is
    one late and read "all the plumber"); where the span's letters are not the slot's,
    the slot's letters are found in ``text`` with any marks between them, nearest the
    span."""
    letters = [c for c in heard.lower() if c.isalnum()]
    if span is not None:
        start = span[0]
        # hassil drops a point that opens a number (".5"): it is the number's own.
        if text[start:start + 1].isdigit() and text[max(0, start - 1):start] == "." and \
                (start < 2 or text[start - 2].isspace()):
            start -= 1
        words = text[start:span[1]]
        if [c for c in words.lower() if c.isalnum()] == letters:
            return words
    if not letters:
        return heard
    pattern = r"[\W_]*".join(re.escape(c) for c in letters)
    found = list(re.finditer(pattern, text, re.I))
    if not found:
        return heard
    start = span[0] if span is not None else 0
    return min(found, key=lambda m: abs(m.start() - start)).group(0)


def _inside_a_word(result: RecognizeResult, text: str) -> bool:
    """Whether a list value matched part of a word: hassil lets "alarm" match the start
    of "alarms" ("cancel the alarms on weekdays" read as "alarm" and "s on weekdays").
    Judged only where hassil's span holds the value's letters: after a word hassil skips
    ("now add 2 minutes ...") its spans are shifted, and tell nothing."""
    for entity in result.entities.values():
        span = entity.text_span
        if entity.is_wildcard or span is None or span[0] >= span[1]:
            continue
        start, end = span
        if [c for c in text[start:end].lower() if c.isalnum()] != \
                [c for c in str(entity.text or "").lower() if c.isalnum()]:
            continue
        if (end < len(text) and text[end - 1].isalpha() and text[end].isalpha()) or \
                (start > 0 and text[start - 1].isalpha() and text[start].isalpha()):
            return True
    return False


def _match(result: RecognizeResult, text: str) -> Match:
    slots: dict[str, Any] = {}
    said: dict[str, str] = {}
    wildcards: list[str] = []
    for name, entity in result.entities.items():
        slots[name] = entity.value
        said[name] = _trimmed(_written(text, entity.text_span, str(entity.text or "")))
        if entity.is_wildcard:
            slots[name] = said[name]
            wildcards.append(name)
    return Match(result.intent.name, slots, said, tuple(wildcards), text)
