"""A timer started over at its whole length: "restart the pizza timer", "reset the timer",
"start the tea timer again" (one running, or one just done: the timers tool's ``done``,
kept for two minutes until it is stopped).

"the timer" with none named is, as for "stop the timer", the one that just rang if none
was set after it, else the only one running; "restart it" is the one the box's last
answer set, or the one that just rang, and nothing else ("do it again" after a coin flip
is the LLM's). "start the timer again" said of a paused timer runs it on, as "resume"
does; "restart" and "start it over" start it over.
"""

from __future__ import annotations

import time
from typing import Any

from appliance.intents.recognizer import Match
from appliance.intents.speech import duration
from appliance.intents.timer_pause import _said_done
from appliance.intents.timers import (
    _named,
    _pointed,
    _select,
    _wants_one,
    alike,
    done_since,
    seconds_of,
    timer_name,
)
from appliance.intents.turn import JUST_SET_S, Handler, Turn

#: The timers tool's actions on one timer that make it "it" for "restart it".
TOUCHING = frozenset({"pause", "resume", "extend"})


async def restart(match: Match, turn: Turn) -> str | None:
    """The timer meant, running or just done, set again for its whole length under its
    name; None when "it" is no timer just set or done."""
    said = match.said.get("name", "").lower().split()
    article = int(said[:1] in (["a"], ["an"]))
    if article and (match.slots.get("again") or match.slots.get("over")):
        return None  # "set a timer again": a new one, its length unsaid
    if said[article:article + 1] and said[article] in turn.lang.words["timer_not_a_name"]:
        return None  # "restart another timer", "restart a new timer"
    observation = await turn.call("timers", {"action": "list"})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    result = observation["result"]
    running = [t for t in result["timers"] if not t.get("at")]
    # A paused timer's age is not known, and does not count.
    done = done_since([t for t in running if not t.get("paused")], result)
    chosen: dict[str, Any] | str
    pointed = _pointed(turn, match)
    if match.slots.get("it") or pointed:  # the one that rang since the last answer, or it
        last = _last_timer(turn)          # set, paused or ran on; "that timer": else newest
        just = [t for t in running if t["id"] == last]
        previous = turn.previous
        since = time.monotonic() - previous.at if previous is not None else float("inf")
        rang = [t for t in done if t["ago_s"] < since]
        if not just and not rang and not pointed:
            return None
        # "that timer", none of those: the newest running, else the one that rang last.
        recent = sorted(result.get("done") or [], key=lambda t: t["ago_s"])
        chosen = rang[0] if rang else just[0] if just else _select(turn, match, running) \
            if running else recent[0] if recent else turn.lang.say("timer_none")
        if isinstance(chosen, str):
            return chosen
    elif done and not _wants_one(match):  # "restart the timer" just after one rang
        chosen = done[0]
    else:
        chosen = _select(turn, match, running) if running else turn.lang.say("timer_none")
        if isinstance(chosen, str):
            again = _named_done(turn, match, result.get("done") or [])
            if again is None:
                return chosen
            chosen = again
    was_done = not any(t["id"] == chosen.get("id") for t in running)
    if not was_done and chosen.get("paused") and match.slots.get("again"):
        observation = await turn.call("timers", {"action": "resume", "id": chosen["id"]})
        if not observation["ok"]:
            return turn.lang.say("tool_failed", problem=observation["error"])
        return _said_done(turn, False, observation["result"]["resumed"])
    if not was_done:
        observation = await turn.call("timers", {"action": "cancel", "id": chosen["id"]})
        if not observation["ok"]:
            return turn.lang.say("tool_failed", problem=observation["error"])
    args: dict[str, Any] = {"action": "set", "seconds": chosen["seconds"]}
    if _named(chosen):
        args["label"] = chosen["label"]
    observation = await turn.call("timers", args)
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    if was_done and not result.get("rang"):  # answered: it rings no more (no alarm rings)
        await turn.call("timers", {"action": "dismiss"})
    made = observation["result"]["set"]
    named = "_named" if _named(made) else ""
    return turn.lang.say(f"timer_restarted{named}", name=made.get("label"),
                         duration=duration(turn.lang, made["seconds"]))


def _last_timer(turn: Turn) -> int | None:
    """The timer the box's last answer set, or paused, ran on or lengthened (at most
    JUST_SET_S ago)."""
    made = turn.just_set()
    previous = turn.previous
    if made is not None or previous is None or time.monotonic() - previous.at > JUST_SET_S:
        return made
    for call in reversed(previous.calls):
        if call.name == "timers" and call.arguments.get("action") in TOUCHING and \
                call.observation.get("ok"):
            return int(call.arguments["id"])
    return None


def _named_done(turn: Turn, match: Match, done: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The countdown just done that the request names or measures (the latest), or None."""
    name, seconds = timer_name(turn, match), seconds_of(match.slots)
    if name:
        done = [t for t in done if _named(t) and alike(turn, name, t["label"])]
    elif seconds > 0:
        done = [t for t in done if abs(t["seconds"] - seconds) < 0.5]
    else:
        return None
    return min(done, key=lambda t: t["ago_s"], default=None)


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "TimerRestart": (restart, ("timers",)),
}
