"""The timers tool: set, list and cancel countdowns and alarms; listeners hear when one fires.

A timer runs for ``seconds``; an alarm (``at``) rings at a clock time, given with its UTC
offset or read in the node's timezone. The voice pipeline listens
(``timers.listen(callback)``) and speaks the label through TTS when one fires.

With a ``path``, the running timers are kept in that file (written whole, then renamed
over the old one) and :meth:`Timers.resume` sets them again after a restart: an alarm
for 7 AM survives the daemon being restarted at 3. One that came due while the daemon
was down fires at once if it is at most :data:`LATE_S` late, else it is dropped and
logged. A fired timer nobody listens to yet (the voice loads after the tools) is kept
for the first listener.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.tools.base import Tool, ToolError

log = logging.getLogger(__name__)

MAX_TIMERS = 100
MAX_TIMER_S = 7 * 24 * 3600
#: A timer that came due while the daemon was down still fires this late, not later.
LATE_S = 3600.0
#: Largest timers file read back (100 timers take about 20 kB).
MAX_FILE_BYTES = 1 << 20


@dataclass
class Timer:
    id: int
    label: str
    due: float
    """When it fires, in seconds since the epoch."""
    seconds: float
    at: str = ""
    """An alarm's clock time (ISO 8601 with its offset); '' for a countdown."""
    handle: asyncio.TimerHandle | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"id": self.id, "label": self.label, "seconds": self.seconds,
               "remaining_s": round(max(0.0, self.due - time.time()), 1)}
        if self.at:
            out["at"] = self.at
        return out

    def event(self) -> dict[str, Any]:
        out = {"id": self.id, "label": self.label, "seconds": self.seconds}
        if self.at:
            out["at"] = self.at
        return out


Listener = Callable[[dict[str, Any]], None]


class Timers(Tool):
    name = "timers"
    description = ("Countdown timers and alarms. action 'set' needs 'seconds' for a timer or "
                   "'at' for an alarm (an ISO 8601 date and time, e.g. "
                   "'2026-12-08T07:00:00'; without an offset it is this node's local time), "
                   "and an optional 'label'; 'list' shows the running ones; 'cancel' needs "
                   "'id'.")
    parameters = {"type": "object",
                  "properties": {"action": {"type": "string", "enum": ["set", "list", "cancel"]},
                                 "seconds": {"type": "number", "exclusiveMinimum": 0,
                                             "maximum": MAX_TIMER_S},
                                 "at": {"type": "string", "maxLength": 40},
                                 "label": {"type": "string", "maxLength": 100},
                                 "id": {"type": "integer", "minimum": 1}},
                  "required": ["action"], "additionalProperties": False}

    def __init__(self, path: Path | None = None, timezone: str = "") -> None:
        self._timers: dict[int, Timer] = {}
        self._next_id = 1
        self._listeners: list[Listener] = []
        self._unheard: list[dict[str, Any]] = []
        self._path = path
        self._timezone = timezone

    def listen(self, listener: Listener) -> None:
        """Call ``listener({"id", "label", "seconds"[, "at"]})`` on the loop when a timer
        fires; timers that fired before anyone listened are passed to the first listener."""
        self._listeners.append(listener)
        unheard, self._unheard = self._unheard, []
        for event in unheard:
            self._tell(event)

    async def call(self, args: dict[str, Any]) -> Any:
        action = args["action"]
        if action == "set":
            return {"set": self._set(args).to_json()}
        if action == "list":
            return {"timers": [t.to_json() for t in self._timers.values()]}
        if "id" not in args:
            raise ToolError("'cancel' needs 'id'")
        gone = self._timers.pop(int(args["id"]), None)
        if gone is None:
            raise ToolError(f"no timer with id {args['id']}")
        if gone.handle is not None:
            gone.handle.cancel()
        self._save()
        return {"cancelled": gone.to_json()}

    def _set(self, args: dict[str, Any]) -> Timer:
        if ("seconds" in args) == ("at" in args):
            raise ToolError("'set' needs 'seconds' (a timer) or 'at' (an alarm), not both")
        if len(self._timers) >= MAX_TIMERS:
            raise ToolError(f"too many timers (at most {MAX_TIMERS})")
        now = time.time()
        if "at" in args:
            when = self._when(str(args["at"]))
            seconds = when.timestamp() - now
            if seconds <= 0:
                raise ToolError(f"'at' {args['at']!r} has passed; give a time to come")
            if seconds > MAX_TIMER_S:
                raise ToolError(f"'at' {args['at']!r} is more than a week away")
            at = when.isoformat(timespec="seconds")
            label = args.get("label") or "alarm"
        else:
            seconds, at, label = float(args["seconds"]), "", args.get("label") or "timer"
        timer = Timer(self._next_id, label, now + seconds, seconds, at)
        self._next_id += 1
        self._arm(timer)
        self._timers[timer.id] = timer
        self._save()
        return timer

    def _when(self, text: str) -> dt.datetime:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ToolError(f"'at' {text!r} is not an ISO 8601 date and time "
                            "like 2026-12-08T07:00:00") from None
        if when.tzinfo is not None:
            return when
        try:
            zone: dt.tzinfo | None = ZoneInfo(self._timezone) if self._timezone else None
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        return when.replace(tzinfo=zone) if zone is not None else when.astimezone()

    def _arm(self, timer: Timer) -> None:
        delay = max(0.0, timer.due - time.time())
        timer.handle = asyncio.get_running_loop().call_later(delay, self._fire, timer.id)

    def resume(self) -> None:
        """Set again the timers kept in the file (on the running loop)."""
        if self._path is None or not self._path.exists():
            return
        try:
            if self._path.stat().st_size > MAX_FILE_BYTES:
                raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
            data = json.loads(self._path.read_text())
            kept = [_timer(item) for item in data["timers"]]
            next_id = int(data["next_id"])
        except (OSError, ValueError, TypeError, KeyError) as exc:
            aside = self._path.with_name(self._path.name + ".unreadable")
            log.warning("timers file %s is unreadable (%s); kept as %s", self._path, exc, aside)
            os.replace(self._path, aside)
            return
        now = time.time()
        for timer in kept[:MAX_TIMERS]:
            if timer.due < now - LATE_S:
                log.warning("timer %d (%s) came due at %s while the daemon was down; dropped",
                            timer.id, timer.label, time.ctime(timer.due))
                continue
            self._arm(timer)
            self._timers[timer.id] = timer
        self._next_id = max([next_id] + [t.id + 1 for t in kept])
        self._save()

    def suspend(self) -> None:
        """Stop every timer here; the file keeps them for :meth:`resume`."""
        for timer in self._timers.values():
            if timer.handle is not None:
                timer.handle.cancel()
        self._timers.clear()

    def _save(self) -> None:
        if self._path is None:
            return
        items = [{"id": t.id, "label": t.label, "due": t.due, "seconds": t.seconds, "at": t.at}
                 for t in self._timers.values()]
        # The next id is kept too: an id once given is not given again (a stale "cancel 3"
        # must not take another timer).
        fresh = self._path.with_name(self._path.name + ".new")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fresh.write_text(json.dumps({"next_id": self._next_id, "timers": items}))
            os.replace(fresh, self._path)
        except OSError as exc:  # a full disk must not stop a timer
            log.error("could not keep the timers in %s: %s", self._path, exc)

    def _fire(self, timer_id: int) -> None:
        timer = self._timers.pop(timer_id, None)
        if timer is None:
            return
        self._save()
        log.info("timer %d (%s) fired", timer.id, timer.label)
        if not self._listeners:
            self._unheard = [*self._unheard, timer.event()][-MAX_TIMERS:]
            return
        self._tell(timer.event())

    def _tell(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("a timer listener failed")


def _timer(item: dict[str, Any]) -> Timer:
    """A timer as the file keeps it; KeyError, TypeError or ValueError when it is not one."""
    return Timer(int(item["id"]), str(item["label"])[:100], float(item["due"]),
                 float(item["seconds"]), str(item.get("at") or ""))
