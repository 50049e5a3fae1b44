"""The timers tool: set, list and cancel countdowns; listeners hear when one fires.

The voice pipeline listens (``timers.listen(callback)``) and speaks the
label through TTS when a timer fires.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.tools.base import Tool, ToolError

log = logging.getLogger(__name__)

MAX_TIMERS = 100
MAX_TIMER_S = 7 * 24 * 3600


@dataclass
class Timer:
    id: int
    label: str
    due_monotonic: float
    seconds: float
    handle: asyncio.TimerHandle | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "seconds": self.seconds,
                "remaining_s": round(max(0.0, self.due_monotonic - time.monotonic()), 1)}


Listener = Callable[[dict[str, Any]], None]


class Timers(Tool):
    name = "timers"
    description = ("Countdown timers. action 'set' needs 'seconds' (and an optional 'label'); "
                   "'list' shows running timers; 'cancel' needs 'id'.")
    parameters = {"type": "object",
                  "properties": {"action": {"type": "string", "enum": ["set", "list", "cancel"]},
                                 "seconds": {"type": "number", "exclusiveMinimum": 0,
                                             "maximum": MAX_TIMER_S},
                                 "label": {"type": "string", "maxLength": 100},
                                 "id": {"type": "integer", "minimum": 1}},
                  "required": ["action"], "additionalProperties": False}

    def __init__(self) -> None:
        self._timers: dict[int, Timer] = {}
        self._ids = itertools.count(1)
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        """Call ``listener({"id", "label", "seconds"})`` on the loop when a timer fires."""
        self._listeners.append(listener)

    async def call(self, args: dict[str, Any]) -> Any:
        action = args["action"]
        if action == "set":
            if "seconds" not in args:
                raise ToolError("'set' needs 'seconds'")
            if len(self._timers) >= MAX_TIMERS:
                raise ToolError(f"too many timers (at most {MAX_TIMERS})")
            seconds = float(args["seconds"])
            timer = Timer(next(self._ids), args.get("label") or "timer",
                          time.monotonic() + seconds, seconds)
            timer.handle = asyncio.get_running_loop().call_later(seconds, self._fire, timer.id)
            self._timers[timer.id] = timer
            return {"set": timer.to_json()}
        if action == "list":
            return {"timers": [t.to_json() for t in self._timers.values()]}
        if "id" not in args:
            raise ToolError("'cancel' needs 'id'")
        gone = self._timers.pop(int(args["id"]), None)
        if gone is None:
            raise ToolError(f"no timer with id {args['id']}")
        if gone.handle is not None:
            gone.handle.cancel()
        return {"cancelled": gone.to_json()}

    def cancel_all(self) -> None:
        for timer in self._timers.values():
            if timer.handle is not None:
                timer.handle.cancel()
        self._timers.clear()

    def _fire(self, timer_id: int) -> None:
        timer = self._timers.pop(timer_id, None)
        if timer is None:
            return
        event = {"id": timer.id, "label": timer.label, "seconds": timer.seconds}
        log.info("timer %d (%s) fired", timer.id, timer.label)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("a timer listener failed")
