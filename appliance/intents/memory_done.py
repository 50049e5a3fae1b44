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
#: Deeds said in one answer ("did I lock the door": the front and the back door).
MAX_SAID = 3


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
    key = _same_key(turn, subject, facts) or memory.fact_key(turn, subject)
    value = deed[len(subject):].strip()
    if verb.lower() in words["participles"]:  # "I've taken my pill": "you have taken"
        deed = f"{words['have']} {deed}"
    fact = {"subject": subject, "verb": "", "value": value, "did": deed,
            "told": now.timestamp()}
    observation = await turn.call("world_set", {"key": key, "value": fact})
    if not observation["ok"]:
        return turn.lang.say("memory_failed", problem=observation["error"])
    return turn.lang.say("deed_remembered", deed=speech.person(turn.lang, deed))


async def recall(match: Match, turn: Turn) -> str | None:
    asked = " ".join(match.said.get("deed", "").split()).rstrip("?.!")
    words = turn.lang.words["deeds"]
    when = re.search(words["asked_when"], asked, re.I)
    asked = asked[:when.start()] if when else asked
    verb, *rest = asked.lower().split() or [""]
    if not {w.strip(",.?!") for w in rest} - set(turn.lang.words["pronouns"]):
        return None  # "did I take it": about what was said before, the LLM's
    facts = await memory.facts_of(turn)
    if isinstance(facts, str):
        return facts
    found = _find(turn, asked, facts)
    if not found:
        if (match.slots.get("have") and verb in words["not_after_have"]) or any(
                w.strip(",.?!") in words["not_about"] for w in rest):
            return None  # "have we got milk", "did I set an alarm": not a deed told
        # Never told that: said so where a deed with that verb was told ("did I lock the
        # back door" after "I locked the front door"), else the LLM's ("did I miss anything").
        told = any(_same_verb(turn, verb, str(f["subject"]).split()[0])
                   for f in facts.values() if memory.is_deed(f))
        return turn.lang.say("deed_unknown") if told else None
    now = await clock.zoned_now(turn)
    if isinstance(now, str):
        return now
    return " ".join(said(turn, facts[key], now) for key in found)


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


def _a_place(turn: Turn, verb: str, rest: str) -> bool:
    """"I put my keys in the drawer": where a thing is (memory's own template), not a
    deed; "I put the bins out (on Tuesday)" is one."""
    words = turn.lang.words["deeds"]
    if verb.lower() not in words["placing"]:
        return False
    where = re.search(rf"\b({'|'.join(map(re.escape, words['places']))})\b", rest, re.I)
    return where is not None and not re.fullmatch(words["when"], f" {rest[where.start():]}",
                                                  re.I)


def _find(turn: Turn, deed: str, facts: dict[str, dict[str, Any]]) -> list[str]:
    """The keys of the deeds told that ``deed`` asks about, newest first, at most
    MAX_SAID: those with the same words after the verb, else those whose words contain them
    ("did I lock the door": the front and the back door)."""
    same, near = _matching(turn, deed, facts)
    found = same or near
    found.sort(key=lambda k: -float(facts[k]["told"]))
    return found[:MAX_SAID]


def _same_key(turn: Turn, deed: str, facts: dict[str, dict[str, Any]]) -> str | None:
    """The key of the deed told with the same verb and words, to be told again."""
    return next(iter(_matching(turn, deed, facts)[0]), None)


def _matching(turn: Turn, deed: str, facts: dict[str, dict[str, Any]],
              ) -> tuple[list[str], list[str]]:
    """The keys of the deeds with ``deed``'s verb (in any tense): those with the same
    words after it, and those whose words contain them."""
    verb, _, rest = deed.partition(" ")
    words = memory.words_of(turn, rest)
    same: list[str] = []
    near: list[str] = []
    if not words:
        return same, near
    for key, fact in facts.items():
        if not memory.is_deed(fact):
            continue
        told_verb, _, told_rest = str(fact["subject"]).partition(" ")
        if not _same_verb(turn, verb, told_verb):
            continue
        told = memory.words_of(turn, told_rest)
        if told == words:
            same.append(key)
        elif words <= told:
            near.append(key)
    return same, near


def _past(turn: Turn, verb: str) -> bool:
    """A verb in the past ("took", "watered"), as a deed is told; not one whose present
    ends so ("need", "feed", "weed": their past is "needed", "fed")."""
    verb = verb.lower()
    return verb in turn.lang.words["deeds"]["irregular"] or (
        verb.endswith("ed") and not verb.endswith("eed") and len(verb) > 3)


def _same_verb(turn: Turn, a: str, b: str) -> bool:
    """One verb in two tenses: "take" / "took" / "taken", "water" / "watered", "empty" /
    "emptied", "stop" / "stopped", "weed" / "weeded"."""
    return bool(_bases(turn, a) & _bases(turn, b))


def _bases(turn: Turn, verb: str) -> set[str]:
    """What ``verb`` may be the base of, or be: itself, its base from the irregular ones,
    and for "-ed" each way a regular past is made ("emptied": "empty"; "stopped": "stop";
    "charged": "charge"; "watered": "water")."""
    verb = verb.lower()
    irregular = turn.lang.words["deeds"]["irregular"]
    out = {verb, str(irregular.get(verb, verb))}
    if verb.endswith("ied"):
        out.add(verb[:-3] + "y")
    if verb.endswith("ed") and len(verb) > 3:
        out |= {verb[:-2], verb[:-1]}
        if len(verb) > 4 and verb[-3] == verb[-4]:
            out.add(verb[:-3])  # "stopped"
    return out


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "MemoryDeed": (remember, ("world_list", "world_set", "clock")),
    "MemoryDeedRecall": (recall, ("world_list", "clock")),
}
