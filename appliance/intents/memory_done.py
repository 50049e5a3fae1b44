"""Things the user says they did, and when: "remember that I took my blood pressure pill
at 8", then "did I take my blood pressure pill" -> "You told me today at 8:03 AM that you
took your blood pressure pill at 8."

A deed is a memory fact (:mod:`appliance.intents.memory`) with two more fields: ``did``,
what was done as said ("took my blood pressure pill"), and ``told``, the unix time it was
told. Its ``subject`` is the deed without the when said after it ("at 8", "this
morning": the ``value``), so the same deed told again replaces the old one: the newest is
what a household asks about. A question finds its deed by the words after the verb, and
a verb that is the same one in another tense ("take", "taken" for "took"; "water" for
"watered"); the answer always says when it was told, so yesterday's pill is never taken
for today's.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from appliance.intents import clock, memory, speech
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn

#: Longest deed kept, in characters (as a fact's subject).
MAX_DEED_CHARS = memory.MAX_SUBJECT_CHARS


async def remember(match: Match, turn: Turn) -> str | None:
    deed = " ".join(match.said.get("deed", "").split()).rstrip(".!")
    verb, _, rest = deed.partition(" ")
    words = turn.lang.words["deeds"]
    if not rest or not _past(turn, verb) or len(deed) > MAX_DEED_CHARS or _a_place(
            turn, verb, rest):
        return None
    when = re.search(words["when"], deed, re.I)
    subject = deed[:when.start()].strip() if when else deed
    if len(subject.split()) < 2:
        return None
    now = await clock.zoned_now(turn)
    if isinstance(now, str):
        return now
    facts = await memory.facts_of(turn)
    if isinstance(facts, str):
        return facts
    same = _find(turn, subject, facts, exact=True)
    key = same or memory.key(turn, subject)
    fact = {"subject": subject, "verb": "", "value": deed[len(subject):].strip(),
            "did": deed, "told": now.timestamp()}
    observation = await turn.call("world_set", {"key": key, "value": fact})
    if not observation["ok"]:
        return turn.lang.say("memory_failed", problem=observation["error"])
    return turn.lang.say("deed_remembered", deed=speech.person(turn.lang, deed))


async def recall(match: Match, turn: Turn) -> str | None:
    asked = " ".join(match.said.get("deed", "").split()).rstrip("?.!")
    when = re.search(turn.lang.words["deeds"]["asked_when"], asked, re.I)
    asked = asked[:when.start()] if when else asked
    words = turn.lang.words["deeds"]
    verb, *rest = asked.lower().split()
    if not rest or (match.slots.get("have") and verb in words["not_after_have"]) or any(
            w.strip(",.?!") in words["not_about"] for w in rest):
        return None  # "have we got milk", "did I set an alarm": not a deed told
    facts = await memory.facts_of(turn)
    if isinstance(facts, str):
        return facts
    found = _find(turn, asked, facts)
    if found is None:
        return turn.lang.say("deed_unknown")
    now = await clock.zoned_now(turn)
    if isinstance(now, str):
        return now
    return said(turn, facts[found], now)


def said(turn: Turn, fact: dict[str, Any], now: dt.datetime) -> str:
    """A deed said back: "You told me today at 8:03 AM that you took your pill at 8."."""
    told = dt.datetime.fromtimestamp(float(fact["told"]), now.tzinfo)
    days = (now.date() - told.date()).days
    words = turn.lang.words["deeds"]["told"]
    day = words["today"] if days == 0 else words["yesterday"] if days == 1 else \
        words["on_weekday"].format(weekday=speech.weekday(turn.lang, told)) if days < 7 \
        else words["on_date"].format(month=speech.month(turn.lang, told), day=told.day)
    return turn.lang.say("deed_recalled", day=day, time=speech.clock_time(turn.lang, told),
                         deed=speech.person(turn.lang, str(fact["did"])))


def is_deed(fact: dict[str, Any]) -> bool:
    return isinstance(fact.get("did"), str) and isinstance(fact.get("told"), int | float)


def _a_place(turn: Turn, verb: str, rest: str) -> bool:
    """"I put my keys in the drawer": where a thing is (memory's own template), not a
    deed; "I put the bins out (on Tuesday)" is one."""
    words = turn.lang.words["deeds"]
    if verb.lower() not in words["placing"]:
        return False
    where = re.search(rf"\b({'|'.join(map(re.escape, words['places']))})\b", rest, re.I)
    return where is not None and not re.fullmatch(words["when"], f" {rest[where.start():]}",
                                                  re.I)


def _find(turn: Turn, deed: str, facts: dict[str, dict[str, Any]], exact: bool = False,
          ) -> str | None:
    """The key of the deed told that ``deed`` asks about: the same verb (in any tense) and
    the same words after it, or (not ``exact``) the one deed whose words contain them."""
    verb, _, rest = deed.partition(" ")
    words = memory.words_of(turn, rest)
    if not words:
        return None
    same, near = [], []
    for key, fact in facts.items():
        if not is_deed(fact):
            continue
        told_verb, _, told_rest = str(fact["subject"]).partition(" ")
        if not _same_verb(turn, verb, told_verb):
            continue
        told = memory.words_of(turn, told_rest)
        if told == words:
            same.append(key)
        elif words <= told:
            near.append(key)
    if same or exact:
        return same[0] if same else None
    return near[0] if len(near) == 1 else None


def _past(turn: Turn, verb: str) -> bool:
    """A verb in the past ("took", "watered"), as a deed is told."""
    verb = verb.lower()
    return verb in turn.lang.words["deeds"]["irregular"] or (
        verb.endswith("ed") and len(verb) > 3)


def _same_verb(turn: Turn, a: str, b: str) -> bool:
    """One verb in two tenses: "take" / "took" / "taken", "water" / "watered", "empty" /
    "emptied", "stop" / "stopped"."""
    a, b = _base(turn, a), _base(turn, b)
    return a == b or any(x.startswith(y) and len(y) >= 3 and len(x) - len(y) <= 1
                         for x, y in ((a, b), (b, a)))


def _base(turn: Turn, verb: str) -> str:
    """A verb's stem for :func:`_same_verb`: its base from the irregular ones, a regular
    past without "ed" ("emptied": "empti"), a base without a final "e" ("take": "tak"),
    or its "y" after a consonant as "i" ("empty": "empti")."""
    verb = verb.lower()
    verb = str(turn.lang.words["deeds"]["irregular"].get(verb, verb))
    if verb.endswith("ied"):
        return verb[:-3] + "i"
    if verb.endswith("ed") and len(verb) > 3:
        return verb[:-2]
    if re.search(r"[^aeiou]y$", verb):
        return verb[:-1] + "i"
    return verb.removesuffix("e")


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "MemoryDeed": (remember, ("world_list", "world_set", "clock")),
    "MemoryDeedRecall": (recall, ("world_list", "clock")),
}
