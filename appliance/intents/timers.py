"""Timers: start, cancel (by name, by duration, the only one, all), how long is left, list,
more or less time on one ("add 2 minutes to the egg timer"), pause and resume one.

Every answer comes from the timers tool: ``set`` returns the timer made,
``list`` the running ones with their remaining seconds, ``cancel`` the one
cancelled.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

from appliance.intents import memory, numbers, sounds, speech
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn
from appliance.tools.timers import ALARM_LABEL

#: A name longer than this many words is a reminder text, answered differently.
SHORT_NAME_WORDS = 2
#: "how long is left" with no timer running is about a reminder due this soon.
SOON_S = 6 * 3600
#: The seconds of a unit said in a timer's length ("the 10 minute timer").
UNITS_S = {"hour": 3600.0, "minute": 60.0, "second": 1.0}


def seconds_of(slots: dict[str, Any]) -> float:
    """The duration the slots spell: hours, minutes, seconds and their fractions."""
    return (float(slots.get("hours") or 0) * 3600 + float(slots.get("minutes") or 0) * 60
            + float(slots.get("seconds") or 0)
            + float(slots.get("hour_fraction") or 0) * 3600
            + float(slots.get("minute_fraction") or 0) * 60)


def timer_name(turn: Turn, match: Match) -> str:
    """The timer's name as said, without a leading "the"/"my"; '' when none."""
    words = match.said.get("name", "").split()
    determiners = {*turn.lang.words["determiners"], *turn.lang.words["pointing"]}
    while words and words[0].lower() in determiners:
        words = words[1:]
    return " ".join(words)


async def start(match: Match, turn: Turn) -> str | None:
    seconds = seconds_of(match.slots)
    if seconds <= 0:
        return None
    name = timer_name(turn, match)
    args: dict[str, Any] = {"action": "set", "seconds": seconds}
    if name:
        args["label"] = name[:100]
    observation = await turn.call("timers", args)
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    made = observation["result"]["set"]
    duration = speech.duration(turn.lang, made["seconds"])
    if not name:
        return turn.lang.say("timer_started", duration=duration)
    key = "timer_started_named" if len(name.split()) <= SHORT_NAME_WORDS \
        else "timer_started_reminder"
    return turn.lang.say(key, name=speech.person(turn.lang, name, yours=False),
                         duration=duration)


async def cancel(match: Match, turn: Turn) -> str | None:
    if match.slots.get("stopping"):
        done = await _done(turn, match)
        if done:
            return done
    timers = await _running(turn)
    if isinstance(timers, str):
        return timers
    chosen = _select(turn, match, timers)
    if isinstance(chosen, str):
        reminder = await _reminder(turn, match, timers, named=True)
        if reminder is None:
            return chosen
        observation = await turn.call("timers", {"action": "cancel", "id": reminder["id"]})
        if not observation["ok"]:
            return turn.lang.say("tool_failed", problem=observation["error"])
        return turn.lang.say("reminder_cancelled", name=reminder["label"])
    return await cancel_one(turn, chosen)


async def cancel_one(turn: Turn, chosen: dict[str, Any]) -> str:
    """Cancel the countdown ``chosen``."""
    observation = await turn.call("timers", {"action": "cancel", "id": chosen["id"]})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    gone = observation["result"]["cancelled"]
    if _named(gone):
        return turn.lang.say("timer_cancelled_named", name=gone["label"])
    return turn.lang.say("timer_cancelled", duration=speech.duration(
        turn.lang, gone["seconds"], before=True))


async def add(match: Match, turn: Turn) -> str | None:
    """More (or, with the slot ``less``, less) time on the timer named, or the only one
    (the timers tool's ``extend``: its length grows with it). With none running, or not
    the one named (it may just have been done: "add 2 more minutes"), more time is a new
    timer of that length: "put 10 minutes on the oven timer"."""
    seconds = seconds_of(match.slots)
    if seconds <= 0:
        return None
    less = bool(match.slots.get("less"))
    timers = await _running(turn)
    if isinstance(timers, str):
        return timers
    chosen = _select(turn, match, timers, by_duration=False)
    if isinstance(chosen, str):
        reminder = await _reminder(turn, match, timers, named=True)
        if reminder is not None:  # "add 5 minutes to the pizza timer": a reminder, later
            return await _move(turn, reminder, -seconds if less else seconds)
        return await start(match, turn) if not less and await _again(turn, match, timers) \
            else chosen
    if less and chosen["remaining_s"] - seconds < 1:
        return turn.lang.say("timer_too_short",
                             left=speech.duration(turn.lang, math.floor(chosen["remaining_s"])))
    observation = await turn.call("timers", {"action": "extend", "id": chosen["id"],
                                             "by": -seconds if less else seconds})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    key = ("timer_taken_off" if less else "timer_added") + ("_named" if _named(chosen) else "")
    return turn.lang.say(key, added=speech.duration(turn.lang, seconds),
                         left=speech.duration(turn.lang,
                                              observation["result"]["extended"]["remaining_s"]),
                         name=chosen.get("label"))


async def _move(turn: Turn, reminder: dict[str, Any], by: float) -> str:
    """A reminder ``by`` seconds later (earlier, below 0): set anew, then the old one
    cancelled, so a failure leaves it as it was."""
    at = dt.datetime.fromisoformat(reminder["at"]) + dt.timedelta(seconds=by)
    left = reminder["remaining_s"] + by
    if left < 1:
        return turn.lang.say("reminder_too_soon", left=_about(turn, reminder["remaining_s"]))
    made = await turn.call("timers", {"action": "set", "label": reminder["label"],
                                      "at": at.isoformat(timespec="seconds")})
    if not made["ok"]:
        return turn.lang.say("tool_failed", problem=made["error"])
    gone = await turn.call("timers", {"action": "cancel", "id": reminder["id"]})
    if not gone["ok"]:
        return turn.lang.say("tool_failed", problem=gone["error"])
    return turn.lang.say("reminder_moved_later" if by > 0 else "reminder_moved_sooner",
                         added=speech.duration(turn.lang, abs(by)), left=_about(turn, left),
                         name=reminder["label"])


def _about(turn: Turn, seconds: float) -> str:
    """How long until a reminder at a clock time: to the minute from 2 minutes on."""
    return speech.duration(turn.lang, round(seconds / 60) * 60 if seconds >= 120 else seconds)


async def _again(turn: Turn, match: Match, timers: list[dict[str, Any]]) -> bool:
    """Whether more time with no timer to put it on is a new timer: the one named was just
    done ("add 2 more minutes to the egg timer"), or none runs and no alarm just rang ("put
    10 minutes on the oven timer"; after an alarm, "add 10 more minutes" is no timer)."""
    observation = await turn.peek("timers", {"action": "list"})
    if not observation["ok"]:
        return False
    result = observation["result"]
    name = timer_name(turn, match)
    if name and not _pointed(turn, match) and any(
            _named(t) and memory.ordered_words(turn, t["label"]) ==
            memory.ordered_words(turn, name) for t in result.get("done") or []):
        return True
    return not timers and not result.get("rang")


async def cancel_all(match: Match, turn: Turn) -> str | None:
    timers = await _running(turn)
    if isinstance(timers, str):
        return timers
    if not timers:
        return turn.lang.say("timer_none")
    failed = await cancel_each(turn, timers)
    if failed:
        return failed
    if len(timers) == 1:
        return turn.lang.say("timer_cancelled_all_one")
    return turn.lang.say("timer_cancelled_all", count=len(timers))


async def cancel_each(turn: Turn, timers: list[dict[str, Any]]) -> str | None:
    """Cancel every one of ``timers`` (or alarms); None, or the answer saying why one
    could not be."""
    for timer in timers:
        observation = await turn.call("timers", {"action": "cancel", "id": timer["id"]})
        if not observation["ok"]:
            return turn.lang.say("tool_failed", problem=observation["error"])
    return None


async def status(match: Match, turn: Turn) -> str | None:
    timers = await _running(turn)
    if isinstance(timers, str):
        return timers
    loose = bool(match.slots.get("loose"))
    if not _wants_one(match) and len(timers) > 1:
        return _listing(turn, timers)
    chosen = _select(turn, match, timers)
    if isinstance(chosen, str):
        reminder = await _reminder(turn, match, timers)
        if reminder is not None:
            return turn.lang.say("timer_left_reminder", name=reminder["label"],
                                 left=_about(turn, reminder["remaining_s"]))
        return None if loose else chosen
    left = speech.duration(turn.lang, chosen["remaining_s"])
    key = "timer_left_paused" if chosen.get("paused") else "timer_left"
    if _named(chosen):
        return turn.lang.say(key + "_named", left=left, name=chosen["label"])
    return turn.lang.say(key, left=left,
                         duration=speech.duration(turn.lang, chosen["seconds"], before=True))


async def listing(match: Match, turn: Turn) -> str | None:
    timers = await _running(turn)
    if isinstance(timers, str):
        return timers
    return _listing(turn, timers)


def _listing(turn: Turn, timers: list[dict[str, Any]]) -> str:
    if not timers:
        return turn.lang.say("timer_none")
    items = [_item(turn, t) for t in timers]
    key = "timer_list_one" if len(items) == 1 else "timer_list"
    return turn.lang.say(key, count=len(items), items=turn.lang.join(items))


def _item(turn: Turn, timer: dict[str, Any]) -> str:
    left = speech.duration(turn.lang, timer["remaining_s"])
    key = "timer_item_paused" if timer.get("paused") else "timer_item"
    if _named(timer):
        return turn.lang.answers[key + "_named"].format(name=timer["label"], left=left)
    return turn.lang.answers[key].format(
        duration=speech.duration(turn.lang, timer["seconds"]), left=left)


async def _running(turn: Turn) -> list[dict[str, Any]] | str:
    """The running timers, soonest first, or the answer saying why they are not known."""
    observation = await turn.call("timers", {"action": "list"})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    # An alarm (a time of day, "at") is appliance/intents/alarms.py's.
    return sorted((t for t in observation["result"]["timers"] if not t.get("at")),
                  key=lambda t: t["remaining_s"])


def done_since(countdowns: list[dict[str, Any]], listed: dict[str, Any]
               ) -> list[dict[str, Any]]:
    """The countdowns of the tool's ``listed`` ``done`` since the newest of ``countdowns``
    was set, the latest first."""
    newest = min((t["seconds"] - t["remaining_s"] for t in countdowns), default=float("inf"))
    return sorted((t for t in listed.get("done") or [] if t["ago_s"] < newest),
                  key=lambda t: t["ago_s"])


async def _done(turn: Turn, match: Match) -> str | None:
    """"OK." when the timer meant was done in the last minutes (the timers tool's
    ``done``); None when none was: then the request cancels one."""
    observation = await turn.call("timers", {"action": "list"})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    result = observation["result"]
    # Not once a timer was set after it: "stop the timer" is then about the new one.
    done = done_since([t for t in result["timers"] if not t.get("at")], result)
    name, seconds = timer_name(turn, match), seconds_of(match.slots)
    if name:
        done = [t for t in done if _named(t) and words(turn, name) <= words(turn, t["label"])]
    elif seconds > 0:
        done = [t for t in done if abs(t["seconds"] - seconds) < 0.5]
    if not done:
        return None
    # Dealt with: said again, "stop the timer" is about the running ones.
    observation = await turn.call("timers", {"action": "dismiss"})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    return turn.lang.say("timer_stopped")


async def _reminder(turn: Turn, match: Match, timers: list[dict[str, Any]], *,
                    named: bool = False) -> dict[str, Any] | None:
    """The reminder a timer's request means where no timer is ("remind me in 10 minutes to
    take the pizza out", then "how long is left on the pizza timer", "cancel the pizza
    timer"): a one-off reminder with the words named, or (not ``named``: "how long is
    left") with none named and no timer running, the soonest within :data:`SOON_S`."""
    name = timer_name(turn, match)
    if ((timers or named) and not name) or _pointed(turn, match) or (
            not named and seconds_of(match.slots) > 0):
        return None
    observation = await turn.peek("timers", {"action": "list"})
    if not observation["ok"]:
        return None
    found = [t for t in observation["result"]["timers"] if t.get("at") and not t.get("repeat")
             and t["label"] != ALARM_LABEL and (name or t["remaining_s"] <= SOON_S)]
    if name:
        found = [t for t in found if alike(turn, name, t["label"])]
    return min(found, key=lambda t: t["remaining_s"], default=None)


def _wants_one(match: Match) -> bool:
    return bool(match.said.get("name")) or seconds_of(match.slots) > 0


def _pointed(turn: Turn, match: Match) -> bool:
    """"that timer", "this timer": the one just set, when no name follows."""
    words = match.said.get("name", "").lower().split()
    return bool(words) and all(w in turn.lang.words["pointing"] for w in words)


def _select(turn: Turn, match: Match, timers: list[dict[str, Any]], *, by_duration: bool = True,
            ) -> dict[str, Any] | str:
    """The one timer the request means, or the answer saying why there is none; with
    ``by_duration`` False the duration said is not the timer's (the time to add)."""
    if not timers:
        return turn.lang.say("timer_none")
    if _pointed(turn, match):
        return max(timers, key=lambda t: t["id"])
    name = timer_name(turn, match)
    seconds = seconds_of(match.slots) if by_duration else 0.0
    length = _length(turn, name)
    if length and not any(_named(t) and words(turn, t["label"]) == words(turn, name)
                          for t in timers):
        name, seconds = "", length  # "add 5 minutes to the 10 minute timer"
    if name:
        wanted = words(turn, name)
        found = [t for t in timers if _named(t) and words(turn, t["label"]) == wanted]
        found = found or [t for t in timers if _named(t) and wanted <= words(turn, t["label"])]
        # "potato" for "potatoes", "cookie" for "cookies".
        found = found or [t for t in timers if _named(t) and alike(turn, name, t["label"])]
        # Misheard by speech recognition ("the X timer"): the one timer whose name sounds so.
        found = found or [t for t in timers if _named(t) and sounds.alike(turn.lang, name,
                                                                          t["label"])]
        if len(found) == 1:
            return found[0]
        if not found:
            return turn.lang.say("timer_not_found", name=name)
        timers = found
    elif seconds > 0:
        found = [t for t in timers if abs(t["seconds"] - seconds) < 0.5]
        if len(found) == 1:
            return found[0]
        if not found:
            return turn.lang.say("timer_not_found_duration",
                                 duration=speech.duration(turn.lang, seconds, before=True))
        timers = found
    if len(timers) == 1:
        return timers[0]
    return turn.lang.say("timer_which", count=len(timers),
                         names=turn.lang.join([_item(turn, t) for t in timers]))


def _length(turn: Turn, name: str) -> float:
    """The seconds a name says when it is a timer's length ("10 minute", "an hour", "two
    minute"), else 0."""
    said = name.lower().replace("-", " ").split()
    unit = said[-1].removesuffix("s") if len(said) >= 2 else ""
    if unit not in UNITS_S:
        return 0.0
    digits = numbers.parse_digits(said[0]) if len(said) == 2 else None
    value, used = (digits, 1) if digits is not None else \
        numbers.parse_words(said[:-1], 0, turn.lang.numbers)
    return float(value) * UNITS_S[unit] if used == len(said) - 1 and value > 0 else 0.0


def alike(turn: Turn, name: str, label: str) -> bool:
    """Whether each word of ``name`` is one of ``label``'s, or its plural or singular:
    "potato" is the "potatoes" timer, "pill" the reminder "take my pills"."""
    have = words(turn, label)
    return all(any(_plural_alike(w, o) for o in have) for w in words(turn, name))


def _plural_alike(a: str, b: str) -> bool:
    """The same word, or one the other's plural ("potato", "potatoes")."""
    short, long = sorted((a, b), key=len)
    return long in (short, f"{short}s", f"{short}es")


def _named(timer: dict[str, Any]) -> bool:
    return bool(timer.get("label")) and timer["label"] != "timer"


def words(turn: Turn, text: str) -> frozenset[str]:
    """The words of a name that tell it apart ("the pasta" = "pasta")."""
    filler = set(turn.lang.words["filler"])
    return frozenset(w for w in re.findall(r"\w+", text.lower()) if w not in filler)


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "TimerStart": (start, ("timers",)),
    "TimerCancel": (cancel, ("timers",)),
    "TimerCancelAll": (cancel_all, ("timers",)),
    "TimerAdd": (add, ("timers",)),
    "TimerStatus": (status, ("timers",)),
    "TimerList": (listing, ("timers",)),
}
