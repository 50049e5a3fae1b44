"""Stop, cancel, never mind: speech already stopped when the user spoke, so say nothing;
but a wake-up alarm ringing is stopped too ("stop" typed in the chat, or said), and that
is said: "OK."."""

from __future__ import annotations

from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn


async def stop(match: Match, turn: Turn) -> str | None:
    if turn.can("timers"):
        listed = await turn.peek("timers", {"action": "list"})
        if listed["ok"] and listed["result"].get("rang"):
            dismissed = await turn.call("timers", {"action": "dismiss"})
            if not dismissed["ok"]:
                return turn.lang.say("tool_failed", problem=dismissed["error"])
            return turn.lang.say("alarm_stopped")
    return turn.lang.say("stopped")


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {"Stop": (stop, ())}
