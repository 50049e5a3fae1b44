"""One running timer or alarm of the timers tool (:mod:`appliance.tools.timers`)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

#: A timer that fires this much after its time is said to be late.
LATE_SAID_S = 60.0


@dataclass
class Timer:
    id: int
    label: str
    due: float
    """When it fires, in seconds since the epoch (kept in the file)."""
    seconds: float
    at: str = ""
    """An alarm's clock time (ISO 8601 with its offset); '' for a countdown."""
    handle: asyncio.TimerHandle | None = None
    ends: float = 0.0
    """A countdown's end on the monotonic clock: it runs its seconds whatever the wall
    clock does; an alarm goes by the wall clock."""
    repeat: tuple[str, ...] = ()
    """A repeating alarm's days (:data:`DAYS`); () rings once."""
    skip: tuple[str, ...] = ()
    """Dates (ISO) a repeating alarm leaves out."""
    clock: str = ""
    """A repeating alarm's clock time ("02:30:00"), kept apart from ``at``: a time the
    spring change skips rings an hour later that day, and at its own time after."""
    paused: float = 0.0
    """A paused countdown's seconds left (it does not run); 0 while it runs."""

    def __post_init__(self) -> None:
        if not self.at:
            self.ends = time.monotonic() + (self.due - time.time())

    def remaining(self) -> float:
        """Seconds until it fires (negative: late); a paused countdown's seconds left."""
        if self.paused:
            return self.paused
        return self.due - time.time() if self.at else self.ends - time.monotonic()

    def pause(self) -> None:
        """Stop a countdown where it is (its handle is the caller's to cancel)."""
        self.paused = max(1.0, self.remaining())

    def unpause(self) -> None:
        """Run a paused countdown on from where it stopped."""
        left, self.paused = self.paused, 0.0
        self.due, self.ends = time.time() + left, time.monotonic() + left

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "seconds": self.seconds,
                "remaining_s": round(max(0.0, self.remaining()), 1), **self._alarm(),
                **({"paused": True} if self.paused else {})}

    def _alarm(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at} if self.at else {}
        if self.repeat:
            out["repeat"] = list(self.repeat)
        if self.skip:
            out["skip"] = list(self.skip)
        return out

    def event(self) -> dict[str, Any]:
        out = {"id": self.id, "label": self.label, "seconds": self.seconds, **self._alarm()}
        late = -self.remaining()
        if late >= LATE_SAID_S:
            out["late_s"] = round(late)
        return out

    def kept(self) -> dict[str, Any]:
        """As the file keeps it: a countdown's end as the wall clock reads it now."""
        due = self.due if self.at else time.time() + self.remaining()
        return {"id": self.id, "label": self.label, "due": due, "seconds": self.seconds,
                "at": self.at, "repeat": list(self.repeat), "skip": list(self.skip),
                "clock": self.clock, **({"paused": self.paused} if self.paused else {})}
