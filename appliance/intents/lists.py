"""The shopping list and the to-do list, in the world model: one key per item.

"add milk, eggs and bread to the shopping list" stores ``lists.shopping.milk_<digest>``
= ``{"item": "milk", "at": <unix time>}`` and one key each for the eggs and the bread.
One key per item means two boxes adding at the same moment cannot lose each other's
item, as they could by rewriting one stored list; the world model is shared by every
box of the home, so the kitchen's list is the one the hall hears read out.

An item is known by its words in order, as memory knows a fact's subject ("eggs" =
"egg", "the milk" = "milk", "jalapeños" = "jalapenos"; "chocolate milk" is not "milk
chocolate"), so it is not added twice and is removed however it is said; "remove milk"
also takes "2 pints of milk" when that is the only item with those words. On the
shopping list "and" separates items ("milk and eggs"), but not inside the names of things
that have it (``list_compounds``: "mac and cheese" is one); on the to-do list only commas
do ("call mum and dad" is one thing to do). "is milk on the list" reads it. Words that stand
for something said before ("add it", "put them on the list") are the LLM's to resolve.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from typing import Any

from appliance.intents.memory import ordered_words
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn
from appliance.world.model import MAX_KEY_CHARS

PREFIX = "lists."
#: Items said in one request, the characters of one item, and the items a list holds.
MAX_SAID_ITEMS = 10
MAX_ITEM_CHARS = 80
MAX_ITEMS = 100
#: The list a request means when it names none.
DEFAULT = "shopping"
#: The list whose items "and" separates.
AND_SEPARATES = ("shopping",)


async def add(match: Match, turn: Turn) -> str | None:
    name, said = _list(match), _items(turn, match)
    if said is None:
        return None
    held = await _held(turn, name)
    if isinstance(held, str):
        return held
    added: list[str] = []
    present: list[str] = []
    for item in said:
        words = _words(turn, item)
        if any(_words(turn, v["item"]) == words for v in held.values()) or \
                any(_words(turn, a) == words for a in added):
            present.append(item)
        else:
            added.append(item)
    if len(held) + len(added) > MAX_ITEMS:
        return _say(turn, "list_full", name, count=MAX_ITEMS)
    for item in added:
        observation = await turn.call("world_set", {"key": _key(turn, name, item), "value": {
            "item": item, "at": time.time()}})
        if not observation["ok"]:
            return _say(turn, "list_failed", name, problem=observation["error"])
    return _outcome(turn, name, added, present, "list_added", "list_already", "present")


async def remove(match: Match, turn: Turn) -> str | None:
    name, said = _list(match), _items(turn, match)
    if said is None:
        return None
    held = await _held(turn, name)
    if isinstance(held, str):
        return held
    removed: list[str] = []
    absent: list[str] = []
    for item in said:
        key = _find(turn, item, held)
        if key is None:
            absent.append(item)
            continue
        observation = await turn.call("world_delete", {"key": key})
        if not observation["ok"]:
            return _say(turn, "list_failed", name, problem=observation["error"])
        removed.append(held.pop(key)["item"])
    return _outcome(turn, name, removed, absent, "list_removed", "list_not_on", "absent")


async def show(match: Match, turn: Turn) -> str | None:
    name = _list(match)
    held = await _held(turn, name)
    if isinstance(held, str):
        return held
    items = [v["item"] for v in sorted(held.values(), key=lambda v: v["at"])]
    if not items:
        return _say(turn, "list_empty", name)
    key = "list_show_one" if len(items) == 1 else "list_show"
    return _say(turn, key, name, count=len(items), items=turn.lang.join(items))


async def check(match: Match, turn: Turn) -> str | None:
    """"is milk on the list"; "is there anything else on the list" reads it."""
    words = match.said.get("items", "").split()
    while words and words[-1].lower() in turn.lang.words["list_still"]:  # "milk still"
        words = words[:-1]
    match = Match(match.intent, match.slots, {**match.said, "items": " ".join(words)})
    if words and words[0].lower() in turn.lang.words["list_anything"]:
        return await show(match, turn)  # "is there anything (else, left) on the list"
    name, said = _list(match), _items(turn, match, tuple(turn.lang.words["list_either"]))
    if said is None:
        return None
    held = await _held(turn, name)
    if isinstance(held, str):
        return held
    found = [(i, _find(turn, i, held)) for i in (_unstill(turn, i, held) for i in said)]
    here = [held[k]["item"] for _, k in found if k]
    absent = [i for i, k in found if k is None]
    if not absent:
        return _say(turn, "list_has", name, items=turn.lang.join(here), verb=_verb(turn, here))
    if not here:
        return _say(turn, "list_has_not", name, items=turn.lang.join(absent),
                    verb=_verb(turn, absent))
    return _say(turn, "list_has_some", name, items=turn.lang.join(here),
                verb=_verb(turn, here), absent=turn.lang.join(absent),
                absent_verb=_verb(turn, absent))


def _unstill(turn: Turn, item: str, held: dict[str, dict[str, Any]]) -> str:
    """"still milk" ("is there still milk on the list") is milk when milk itself is on it;
    "still water" stays what it is."""
    first, _, rest = item.partition(" ")
    if first.lower() in turn.lang.words["list_still"] and rest and _find(turn, item, held) is None \
            and any(_words(turn, v["item"]) == _words(turn, rest) for v in held.values()):
        return rest
    return item


async def clear(match: Match, turn: Turn) -> str | None:
    name = _list(match)
    held = await _held(turn, name)
    if isinstance(held, str):
        return held
    for key in held:
        observation = await turn.call("world_delete", {"key": key})
        if not observation["ok"]:
            return _say(turn, "list_failed", name, problem=observation["error"])
    if not held:
        return _say(turn, "list_cleared_none", name)
    return _say(turn, "list_cleared_one" if len(held) == 1 else "list_cleared", name,
                count=len(held))


def _outcome(turn: Turn, name: str, done: list[str], left: list[str], key: str, none: str,
             field: str) -> str:
    """What an add or a remove did: all of it (``key``), none of it (``none``: the items
    already there, or not there), or some (``key``_some, the rest as ``field``)."""
    if not done:
        return _say(turn, none, name, items=turn.lang.join(left), verb=_verb(turn, left))
    if left:
        return _say(turn, f"{key}_some", name, items=turn.lang.join(done),
                    verb=_verb(turn, left), **{field: turn.lang.join(left)})
    return _say(turn, key, name, items=turn.lang.join(done))


def _say(turn: Turn, answer: str, name: str, **fields: Any) -> str:
    return turn.lang.say(answer, list=turn.lang.words["list_names"][name], **fields)


def _list(match: Match) -> str:
    """The list the request names; the shopping list when it names none ("my list")."""
    name = match.slots.get("list")
    return name if isinstance(name, str) else DEFAULT


def _items(turn: Turn, match: Match, also: tuple[str, ...] = ()) -> list[str] | None:
    """The items said, each without the words before it that name no thing ("some
    milk"); None when there are none, too many or one too long. ``also``: more words
    that separate them ("milk or eggs" in a question)."""
    text = match.said.get("items", "").strip(" ,.")
    name = _list(match)
    words = [*(turn.lang.words["list_separators"] if name in AND_SEPARATES else []), *also]
    # A thing whose name has "and" in it is kept whole (NUL for its spaces), with what
    # follows it ("cookies and cream ice cream", "half and half creamer"; so "cookies and
    # cream cheese" is one item too: say "cookies, and cream cheese").
    for compound in turn.lang.words["list_compounds"]:
        pattern = r"\s+".join(re.escape(w) if w != "and" else "(?:and|&)"
                               for w in compound.split())
        text = re.sub(rf"\b{pattern}\b", compound.replace(" ", "\0"), text, flags=re.I)
    pattern = "|".join([r"\s*,\s*", *(rf"\s+{re.escape(w)}\s+" for w in words)])
    parts = re.split(pattern, text, flags=re.I)
    leading = sorted(turn.lang.words["list_leading"], key=len, reverse=True)
    edges = [str(w) for w in turn.lang.words["list_separators"]]
    not_items = {str(w) for w in turn.lang.words["list_not_items"]}
    items = []
    for part in parts:
        part = _unwrapped(part.replace("\0", " ").strip(" ,."), edges)
        for word in leading:
            if part.lower().startswith(f"{word} "):
                part = part[len(word) + 1:].strip()
                break
        if not part:
            continue
        if set(part.lower().split()) <= not_items or not _words(turn, part):
            return None  # "add it to the list": what "it" is, the LLM may know
        items.append(part)
    if not items or len(items) > MAX_SAID_ITEMS or any(len(i) > MAX_ITEM_CHARS for i in items):
        return None
    return items


def _unwrapped(part: str, edges: list[str]) -> str:
    """``part`` without a separator word at either end ("and butter" after an Oxford
    comma, "milk and" cut short)."""
    words = part.split()
    while words and words[0].lower() in edges:
        words = words[1:]
    while words and words[-1].lower() in edges:
        words = words[:-1]
    return " ".join(words)


async def _held(turn: Turn, name: str) -> dict[str, dict[str, Any]] | str:
    """The list's items by key, or the answer saying the list cannot be reached."""
    observation = await turn.call("world_list", {"prefix": f"{PREFIX}{name}."})
    if not observation["ok"]:
        return _say(turn, "list_failed", name, problem=observation["error"])
    return {k: v for k, v in observation["result"]["entries"].items()
            if isinstance(v, dict) and isinstance(v.get("item"), str)
            and isinstance(v.get("at"), (int, float))}


def _find(turn: Turn, item: str, held: dict[str, dict[str, Any]]) -> str | None:
    """The key of the item ``item`` names: the same words in the same order, else the one
    item that has all of them in that order ("milk" for "2 pints of milk"); never a merely
    alike item ("pears" is not "peas")."""
    words = _words(turn, item)
    same = [k for k, v in held.items() if _words(turn, v["item"]) == words]
    if same:
        return same[0]
    holding = [k for k, v in held.items() if _in_order(words, _words(turn, v["item"]))]
    return holding[0] if len(holding) == 1 else None


def _in_order(words: tuple[str, ...], item: tuple[str, ...]) -> bool:
    """Whether ``item`` has all of ``words`` in their order ("milk" in "2 pints of milk";
    "milk chocolate" is not in "chocolate milk")."""
    rest = iter(item)
    return all(word in rest for word in words)


def _words(turn: Turn, text: str) -> tuple[str, ...]:
    """An item's words in order, without filler, stemmed and without accents."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text)
                    if not unicodedata.combining(c))
    return ordered_words(turn, plain)


def _verb(turn: Turn, items: list[str]) -> str:
    last = items[-1].split()[-1].lower() if items and items[-1].split() else ""
    plural = len(items) > 1 or any(last.endswith(e) and not last.endswith("ss")
                                   for e in turn.lang.words["plural_endings"])
    return str(turn.lang.words["plural_verb" if plural else "singular_verb"])


def _key(turn: Turn, name: str, item: str) -> str:
    """``lists.shopping.milk_<digest>``: readable, and unique per item's words in order."""
    words = _words(turn, item)
    slug = "_".join(re.sub(r"[^a-z0-9]", "", w) for w in words)
    prefix = f"{PREFIX}{name}."
    slug = re.sub("_+", "_", slug).strip("_")[: MAX_KEY_CHARS - len(prefix) - 9]
    digest = hashlib.sha256(" ".join(words).encode()).hexdigest()[:8]
    return f"{prefix}{slug}_{digest}" if slug else f"{prefix}{digest}"


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "ListAdd": (add, ("world_list", "world_set")),
    "ListRemove": (remove, ("world_list", "world_delete")),
    "ListShow": (show, ("world_list",)),
    "ListCheck": (check, ("world_list",)),
    "ListClear": (clear, ("world_list", "world_delete")),
}
