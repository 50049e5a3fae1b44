"""A timer started over at its whole length: "restart the pizza timer", "reset the timer",
"start the tea timer again" (one running, or one just done: the timers tool's ``done``,
kept for two minutes until it is stopped)."""

from __future__ import annotations

from typing import Any

from appliance.intents import speech
from appliance.intents.recognizer import Match
from appliance.intents.timers import _named, _pointed, _select, alike, seconds_of, timer_name
from appliance.intents.turn import Handler, Turn


async def restart(match: Match, turn: Turn) -> str | None:
    """The timer meant (named, of the length said, "that", or the only one), running or
    just done, set again for its whole length under its name."""
    observation = await turn.call("timers", {"action": "list"})
    if not observation["ok"]:
        return turn.lang.say("tool_failed", problem=observation["error"])
    result = observation["result"]
    running = [t for t in result["timers"] if not t.get("at")]
    done = sorted(result.get("done") or [], key=lambda t: t["ago_s"])
    just = [t for t in running if t["id"] == turn.just_set()] if match.slots.get("it") else []
    chosen: dict[str, Any] | str = just[0] if just else \
        _select(turn, match, running) if running else ""
    was_done = False
    if isinstance(chosen, str):
        again = _just_done(turn, match, done)
        if again is None:
            return chosen or turn.lang.say("timer_none")
        chosen, was_done = again, True
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
    if was_done:  # answered: it rings no more
        await turn.call("timers", {"action": "dismiss"})
    made = observation["result"]["set"]
    named = "_named" if _named(made) else ""
    return turn.lang.say(f"timer_restarted{named}", name=made.get("label"),
                         duration=speech.duration(turn.lang, made["seconds"]))


def _just_done(turn: Turn, match: Match, done: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The countdown just done that the request means (the latest of them), or None."""
    name, seconds = timer_name(turn, match), seconds_of(match.slots)
    if name and not _pointed(turn, match):
        done = [t for t in done if _named(t) and alike(turn, name, t["label"])]
    elif seconds > 0:
        done = [t for t in done if abs(t["seconds"] - seconds) < 0.5]
    return done[0] if done else None


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {
    "TimerRestart": (restart, ("timers",)),
}
