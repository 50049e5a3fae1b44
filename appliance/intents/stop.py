"""Stop, cancel, never mind: speech already stopped when the user spoke, so say nothing."""

from __future__ import annotations

from appliance.intents.recognizer import Match
from appliance.intents.turn import Handler, Turn


async def stop(match: Match, turn: Turn) -> str | None:
    return turn.lang.say("stopped")


HANDLERS: dict[str, tuple[Handler, tuple[str, ...]]] = {"Stop": (stop, ())}
