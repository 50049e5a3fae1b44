"""Facts the user asks to be remembered, in the world model under ``memory.<words>`` keys.

"remember that the garage code is 4711" stores ``memory.garage_code`` =
``{"subject": "the garage code", "verb": "is", "value": "4711"}``. A question
finds its fact by the subject's words, whatever their order and filler words
("the code for the garage"), so recall, update and forget need no exact key.

"forget the garage code" deletes the fact and leaves a mark, ``memory.forgotten_<digest>``
= ``{"forgotten": true, "words": <sha256 of the subject's words>, "at": <unix time>}``:
no value and no subject, only a one-way digest of its words. For FORGOTTEN_DAYS a question
with the same subject words is answered that it was forgotten as asked, where it would
otherwise be handed on (to an LLM that could only guess a code, or, on an edge with none,
to an error). Only the same words match a mark, not alike ones, and a fact remembered
again comes first. "forget everything" deletes facts and marks alike.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import time
from typing import Any

from appliance.intents import sounds, speech
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn
from appliance.world.model import MAX_KEY_CHARS

PREFIX = "memory."
#: Longest subject and value kept, in characters.
MAX_SUBJECT_CHARS = 100
MAX_VALUE_CHARS = 500
#: How alike (difflib's ratio) a misheard subject's words must be: each, and on average.
WORD_ALIKE = 0.5
ALIKE = 0.75
#: How alike a misheard subject's letters must be when it was heard as more or fewer words
#: than it was said ("wife i password" for "wifi password": 0.96), and how long each.
RUN_TOGETHER_ALIKE = 0.85
MIN_RUN_TOGETHER_CHARS = 6
#: Facts read back by "what do you remember".
MAX_LISTED = 10
#: How long a forgotten fact's mark answers for it (module docstring); older marks are
#: ignored, and deleted at the next "forget".
FORGOTTEN_DAYS = 30
FORGOTTEN = f"{PREFIX}forgotten_"


async def remember(match: Match, turn: Turn) -> str | None:
    subject = _subject(turn, match.said.get("subject", "") or _thing(match))
    value = match.said.get("value", "").strip()
    if match.slots.get("place") and value:  # "I put my keys in the drawer"
        if _not_a_place(turn, subject, value):
            return None
        named = subject.split()  # "the drill back (in the toolbox)": the drill
        while len(named) > 1 and named[-1].lower() in turn.lang.words["not_a_place"]["put"]:
            named = named[:-1]
        subject, value = " ".join(named), f"{match.slots['place']} {value}"
    words = words_of(turn, subject)
    if not words or not value or len(subject) > MAX_SUBJECT_CHARS \
            or len(value) > MAX_VALUE_CHARS:
        return None
    facts = await facts_of(turn)
    if isinstance(facts, str):
        return facts
    same = [key for key, fact in facts.items() if words_of(turn, fact["subject"]) == words]
    key = same[0] if same else fact_key(turn, subject)
    verb = _verb(turn, subject, match)
    observation = await turn.call("world_set", {"key": key, "value": {
        "subject": subject, "verb": verb, "value": value}})
    if not observation["ok"]:
        return turn.lang.say("memory_failed", problem=observation["error"])
    return turn.lang.say("remembered", subject=_said(turn, subject), verb=verb,
                         value=speech.person(turn.lang, value))


async def recall(match: Match, turn: Turn) -> str | None:
    subject = _subject(turn, match.said.get("subject", "") or _thing(match))
    own = subject.split()[0].lower() in turn.lang.words["own"] if subject else False
    explicit = bool(match.slots.get("explicit")) or own
    if not words_of(turn, subject):
        return None
    memory = await _memory(turn)
    if isinstance(memory, str):
        return memory if explicit else None
    facts, marks = memory
    if match.slots.get("thing") and not match.slots.get("vehicle") and \
            _find(turn, subject, facts) is None:
        # "where did I park": the van or the bike, when that is what was parked
        subject = next((str(v) for v in turn.lang.words["vehicles"]
                        if _find(turn, str(v), facts) is not None), subject)
    digest = _mark(turn, subject)
    if _same(turn, subject, facts) is None and any(
            m["words"] == digest and _live(m) for m in marks.values()):
        return turn.lang.say("recall_forgotten", subject=_said(turn, subject))
    facts = _plain(facts)  # deeds are memory_done's
    found = _find(turn, subject, facts)
    if found is None:
        return turn.lang.say("recall_unknown", subject=_said(turn, subject)) \
            if explicit else None
    fact = facts[found]
    return turn.lang.say("recalled", subject=_said(turn, fact["subject"]), verb=fact["verb"],
                         value=speech.person(turn.lang, fact["value"]))


async def forget(match: Match, turn: Turn) -> str | None:
    subject = _subject(turn, match.said.get("subject", ""))
    if not words_of(turn, subject) or {w for w in re.findall(r"\w+", subject.lower())
                                     if w not in turn.lang.words["courtesy"]} <= set(
            turn.lang.words["pronouns"]):
        return None  # "remove it", "delete this": about what was said before, the LLM's
    memory = await _memory(turn)
    if isinstance(memory, str):
        return memory
    facts, marks = memory
    # A fact first ("forget the cat" with the cat's name and "I fed the cat" told), then
    # a deed ("forget that I fed the cat").
    found = _find(turn, subject, _plain(facts)) or _find(turn, subject, facts)
    if found is None:
        return turn.lang.say("forget_unknown", subject=_said(turn, subject))
    subject = facts[found]["subject"]
    old = [key for key, mark in marks.items() if not _live(mark)]
    for key in (found, *old):
        observation = await turn.call("world_delete", {"key": key})
        if not observation["ok"]:
            return turn.lang.say("memory_failed", problem=observation["error"])
    observation = await turn.call("world_set", {"key": _mark_key(turn, subject), "value": {
        "forgotten": True, "words": _mark(turn, subject), "at": time.time()}})
    if not observation["ok"]:
        return turn.lang.say("memory_failed", problem=observation["error"])
    return _forgotten(turn, facts[found])


def _forgotten(turn: Turn, fact: dict[str, Any]) -> str:
    """"OK, I forgot the garage code."; a deed: "OK, I forgot that you fed the cat."."""
    if is_deed(fact):
        return turn.lang.say("deed_forgotten", deed=speech.person(turn.lang, fact["did"]))
    return turn.lang.say("forgotten", subject=_said(turn, fact["subject"]))


async def forget_all(match: Match, turn: Turn) -> str | None:
    memory = await _memory(turn)
    if isinstance(memory, str):
        return memory
    facts, marks = memory
    for key in [*facts, *marks]:
        observation = await turn.call("world_delete", {"key": key})
        if not observation["ok"]:
            return turn.lang.say("memory_failed", problem=observation["error"])
    if len(facts) == 1:
        [fact] = facts.values()
        return _forgotten(turn, fact)
    return turn.lang.say("forgotten_all" if facts else "forgotten_all_none", count=len(facts))


async def remembered(turn: Turn, subject: str) -> bool:
    """Whether a fact about ``subject`` is remembered, so that a question about it is
    memory's ("when is halloween" after "remember that halloween is on saturday for us")."""
    if not words_of(turn, subject):
        return False
    facts = await facts_of(turn)
    return not isinstance(facts, str) and _find(turn, subject, facts) is not None


async def listing(match: Match, turn: Turn) -> str | None:
    facts = await facts_of(turn)
    if isinstance(facts, str):
        return facts
    if not facts:
        return turn.lang.say("memory_none")
    items = [turn.lang.answers["deed_item"].format(deed=speech.person(turn.lang, f["did"]))
             if is_deed(f) else turn.lang.answers["memory_item"].format(
                 subject=_said(turn, f["subject"]), verb=f["verb"],
                 value=speech.person(turn.lang, f["value"]))
             for f in list(facts.values())[:MAX_LISTED]]
    key = "memory_list_one" if len(items) == 1 else "memory_list"
    return turn.lang.say(key, count=len(facts), items=turn.lang.join(items))


async def facts_of(turn: Turn) -> dict[str, dict[str, Any]] | str:
    """The remembered facts by key, or the answer saying the memory cannot be reached."""
    memory = await _memory(turn)
    return memory if isinstance(memory, str) else memory[0]


async def _memory(turn: Turn) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]] | str:
    """The remembered facts and the marks of forgotten ones (live or not), each by key; or
    the answer saying the memory cannot be reached."""
    observation = await turn.call("world_list", {"prefix": PREFIX})
    if not observation["ok"]:
        return turn.lang.say("memory_failed", problem=observation["error"])
    entries = observation["result"]["entries"]
    facts = {k: v for k, v in entries.items()
             if isinstance(v, dict) and {"subject", "verb", "value"} <= set(v)}
    marks = {k: v for k, v in entries.items() if k.startswith(FORGOTTEN) and isinstance(v, dict)
             and isinstance(v.get("words"), str) and isinstance(v.get("at"), (int, float))}
    return facts, marks


def is_deed(fact: dict[str, Any]) -> bool:
    """A thing the user did (:mod:`appliance.intents.memory_done`), not a fact."""
    return isinstance(fact.get("did"), str) and isinstance(fact.get("told"), int | float)


def _plain(facts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The facts that are no deeds."""
    return {k: f for k, f in facts.items() if not is_deed(f)}


def _live(mark: dict[str, Any]) -> bool:
    """The mark still answers for its fact (FORGOTTEN_DAYS)."""
    return bool(time.time() - mark["at"] <= FORGOTTEN_DAYS * 86400)


def _same(turn: Turn, subject: str, facts: dict[str, dict[str, Any]]) -> str | None:
    words = words_of(turn, subject)
    return next((k for k, f in facts.items() if words_of(turn, f["subject"]) == words), None)


def _mark(turn: Turn, subject: str) -> str:
    """The digest a forgotten subject is known by: of its words, not the words."""
    return hashlib.sha256(" ".join(sorted(words_of(turn, subject))).encode()).hexdigest()


def _mark_key(turn: Turn, subject: str) -> str:
    return f"{FORGOTTEN}{_mark(turn, subject)[:16]}"


def _find(turn: Turn, subject: str, facts: dict[str, dict[str, Any]]) -> str | None:
    """The key of the fact about ``subject``: same words, else the one fact whose words
    contain all of them (or all of whose words are asked for)."""
    words = words_of(turn, subject)
    same = _same(turn, subject, facts)
    if same is not None:
        return same
    near = [k for k, f in facts.items()
            if words <= words_of(turn, f["subject"]) or words_of(turn, f["subject"]) <= words]
    if len(near) == 1:
        return near[0]
    if near:
        return None
    # Misheard by speech recognition ("the grash code"): the one fact that sounds alike,
    # word by word or, where a word was heard as two ("wife I password"), letter by letter.
    alike = [k for k, f in facts.items() if _alike(turn, words, words_of(turn, f["subject"]))
             or _run_together_alike(turn, subject, f["subject"])]
    return alike[0] if len(alike) == 1 else None


def _run_together_alike(turn: Turn, said: str, stored: str) -> bool:
    """The subjects' words, each written without spaces, as alike as RUN_TOGETHER_ALIKE
    (for a different number of words only: the same number is ``_alike``'s)."""
    said_words, stored_words = _kept(turn, said), _kept(turn, stored)
    a, b = "".join(said_words), "".join(stored_words)
    return len(said_words) != len(stored_words) and min(len(a), len(b)) >= MIN_RUN_TOGETHER_CHARS \
        and difflib.SequenceMatcher(None, a, b).ratio() >= RUN_TOGETHER_ALIKE


def _alike(turn: Turn, said: frozenset[str], stored: frozenset[str]) -> bool:
    """As many words, each like one of the other's, and alike on the whole. Two words are
    as alike as difflib finds their letters, or wholly when they sound the same ("grosh"
    and "garage" are both G620)."""
    if len(said) != len(stored):
        return False

    def score(a: str, b: str) -> float:
        if sounds.key(turn.lang, a) == sounds.key(turn.lang, b):
            return 1.0
        return difflib.SequenceMatcher(None, a, b).ratio()
    left = list(stored)
    scores = []
    for word in sorted(said):
        best = max(left, key=lambda w: score(word, w))
        scores.append(score(word, best))
        left.remove(best)
    return min(scores) >= WORD_ALIKE and sum(scores) / len(scores) >= ALIKE


def _thing(match: Match) -> str:
    """What was parked: the vehicle named ("the van"), else the car."""
    return str(match.slots.get("vehicle") or match.slots.get("thing") or "")


def _not_a_place(turn: Turn, subject: str, value: str) -> bool:
    """"I put the bins out on Tuesday", "I put the kids to bed at 8": a when or a doing,
    not where a thing is ("on 5th Avenue", "at 42 Oak Street" are places)."""
    words = turn.lang.words["not_a_place"]
    said = f" {subject.lower()} "
    first = value.split()[0].lower() if value.split() else ""
    return first in words["when"] or any(f" {w} " in said for w in words["doing"]) or \
        re.fullmatch(r"\d{1,2}([:.]\d\d)?\s*(am|pm|a\.m\.|p\.m\.|o'clock)?",
                     value.lower()) is not None


def _subject(turn: Turn, said: str) -> str:
    words = said.split()
    if words and words[0].lower() == "that":
        words = words[1:]
    return " ".join(words)


def _said(turn: Turn, subject: str) -> str:
    """The subject as said back: "my code" -> "your code"; a bare one gets "the", not one
    that opens with whose it is ("mom's birthday")."""
    words = subject.split()
    bare = words and words[0].lower() not in turn.lang.words["determiners"] \
        and words[0].lower() not in turn.lang.words["person"] and not words[0][0].isupper() \
        and not re.search(r"\w('s|s')$", words[0])
    if bare and turn.lang.words.get("default_determiner"):
        subject = f"{turn.lang.words['default_determiner']} {subject}"
    return speech.person(turn.lang, subject)


def words_of(turn: Turn, text: str) -> frozenset[str]:
    """The words that tell one subject from another, in a form that ignores how they were
    written: "the plumber's number" = "plumbers number", "Wi-Fi" = "wifi"."""
    return frozenset(_stem(turn, w) for w in _kept(turn, text))


def ordered_words(turn: Turn, text: str) -> tuple[str, ...]:
    """:func:`words_of` in the order said ("chocolate milk" is not "milk chocolate")."""
    return tuple(_stem(turn, w) for w in _kept(turn, text))


def _kept(turn: Turn, text: str) -> list[str]:
    """``text``'s words in order, without the filler ("the", "my") that names nothing."""
    filler = set(turn.lang.words["filler"]) | set(turn.lang.words["person"])
    return [w for w in _tokens(text) if w not in filler]


def _tokens(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:'[^\W_]+)?", text.lower().replace("-", ""))


def _stem(turn: Turn, word: str) -> str:
    for ending in turn.lang.words["stem_endings"]:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def _verb(turn: Turn, subject: str, match: Match) -> str:
    said = match.slots.get("verb")
    if said:
        return str(said)
    last = subject.split()[-1].lower() if subject.split() else ""
    plural = any(last.endswith(e) and not last.endswith("ss")
                 for e in turn.lang.words["plural_endings"])
    return str(turn.lang.words["plural_verb" if plural else "singular_verb"])


def fact_key(turn: Turn, subject: str) -> str:
    """``memory.garage_code_<hash>``: readable, and unique per set of subject words."""
    words = words_of(turn, subject)
    ordered = [_stem(turn, w) for w in _tokens(subject)]
    slug = "_".join(re.sub(r"[^a-z0-9]", "", w) for w in dict.fromkeys(ordered) if w in words)
    slug = re.sub("_+", "_", slug).strip("_")[: MAX_KEY_CHARS - len(PREFIX) - 9]
    digest = hashlib.sha256(" ".join(sorted(words)).encode()).hexdigest()[:8]
    return f"{PREFIX}{slug}_{digest}" if slug else f"{PREFIX}{digest}"


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "MemoryRemember": (remember, ("world_list", "world_set")),
    "MemoryRecall": (recall, ("world_list",)),
    "MemoryForget": (forget, ("world_list", "world_delete", "world_set")),
    "MemoryForgetAll": (forget_all, ("world_list", "world_delete")),
    "MemoryList": (listing, ("world_list",)),
}
