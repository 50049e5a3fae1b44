"""Timers paused and run on: "pause the pizza timer", "resume the timer", "pause all
timers" (the timers tool's ``pause`` and ``resume``)."""

from __future__ import annotations

from typing import Any

from appliance.intents import speech
from appliance.intents.recognizer import Match
from appliance.intents.timers import _named, _pointed, _running, _select, _wants_one
from appliance.intents.turn import Handler, Turn


async def pause(match: Match, turn: Turn) -> str | None:
    """Stop a countdown where it is ("pause the pizza timer"), or, with the slot
    ``unpause``, run a paused one on. With no timer named, the one that can be: "pause
    the timer" beside a paused one means the one running."""
    pausing = not match.slots.get("unpause")
    timers = await _running(turn)
    if isinstance(timers, str):
        return timers
    if match.slots.get("all"):
        return await _pause_all(turn, timers, pausing)
    if not _wants_one(match) and not _pointed(turn, match):
        can = [t for t in timers if bool(t.get("paused")) != pausing]
        if not can and len(timers) > 1:  # "pause the timer" with every one paused
            return turn.lang.say("timer_all_paused" if pausing else "timer_all_running")
        timers = can or timers
    chosen = _select(turn, match, timers)
    if isinstance(chosen, str):
        return chosen
    named = "_named" if _named(chosen) else ""
    if bool(chosen.get("paused")) == pausing:
        key = "timer_already_paused" if pausing else "timer_already_running"
        return turn.lang.say(key + named, name=chosen.get("label"),
                             left=speech.duration(turn.lang, chosen["remaining_s"]))
    action = "pause" if pausing else "resume"
    observation = await turn.call("timers", {"action": action, "id": chosen["id"]})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    return _said_done(turn, pausing, observation["result"][action + "d"])


async def _pause_all(turn: Turn, timers: list[dict[str, Any]], pausing: bool) -> str:
    """"pause all timers", "resume the timers": every one that can be."""
    if not timers:
        return turn.lang.say("timer_none")
    can = [t for t in timers if bool(t.get("paused")) != pausing]
    if not can:
        return turn.lang.say("timer_all_paused" if pausing else "timer_all_running")
    action = "pause" if pausing else "resume"
    for timer in can:
        observation = await turn.call("timers", {"action": action, "id": timer["id"]})
        if not observation["ok"]:
            return turn.lang.say("tool_failed", problem=observation["error"])
    if len(can) == 1:  # "Paused the tea timer: 3 minutes left."
        return _said_done(turn, pausing, observation["result"][action + "d"])
    return turn.lang.say("timer_paused_all" if pausing else "timer_resumed_all",
                         count=len(can))


def _said_done(turn: Turn, pausing: bool, timer: dict[str, Any]) -> str:
    """"Paused the tea timer: 3 minutes left.", "The timer is running again: ..."."""
    key = ("timer_paused" if pausing else "timer_resumed") + (
        "_named" if _named(timer) else "")
    return turn.lang.say(key, name=timer.get("label"),
                         left=speech.duration(turn.lang, timer["remaining_s"]))


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "TimerPause": (pause, ("timers",)),
}
