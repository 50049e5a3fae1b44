"""Stop, cancel, never mind: speech already stopped when the user spoke, so say nothing;
but a wake-up alarm ringing is stopped too ("stop" typed in the chat, or said), and that
is said: "OK."; and "cancel it" right after a timer, an alarm or a reminder was set (the
box's last answer, at most 2 minutes before) cancels that one."""

from __future__ import annotations

from typing import Any

from appliance.intents import alarms, clock, timers
from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn
from appliance.tools.timers import ALARM_LABEL

#: How long after it rang a wake-up alarm may still be ringing: the voice's default rings
#: (``voice.alarm_rings`` 5, ``voice.alarm_ring_gap_s`` 30 s apart). Later, "stop" is about
#: speech again, and says nothing; a reminder is said once and never rings.
RINGING_S = 150


async def stop(match: Match, turn: Turn) -> str | None:
    if turn.can("timers"):
        listed = await turn.peek("timers", {"action": "list"})
        if listed["ok"] and any(r.get("label") == ALARM_LABEL and r.get("ago_s", 0) <= RINGING_S
                                for r in listed["result"].get("rang") or []):
            dismissed = await turn.call("timers", {"action": "dismiss"})
            if not dismissed["ok"]:
                return turn.lang.say("tool_failed", problem=dismissed["error"])
            return turn.lang.say("alarm_stopped")
        made = turn.just_set() if match.slots.get("cancel_that") and listed["ok"] else None
        still = [t for t in listed["result"]["timers"] if t["id"] == made] if made else []
        if still:
            return await _cancel(turn, still[0])
    if match.slots.get("undo"):
        return None  # "undo that", "delete that" after a list or a fact: the LLM's
    return turn.lang.say("stopped")


async def _cancel(turn: Turn, chosen: dict[str, Any]) -> str:
    if not chosen.get("at"):
        return await timers.cancel_one(turn, chosen)
    now = await clock.zoned_now(turn)
    return now if isinstance(now, str) else await alarms.cancel_one(turn, chosen, now)


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {"Stop": (stop, ())}
