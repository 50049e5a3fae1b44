"""The clock of the timers tool's alarms: a clock time in the node's timezone, and the
days a repeating alarm rings on.

A repeating alarm keeps its clock time, not its distance: "every day at 7" rings at 7
on the morning after a change of daylight saving time too, 23 or 25 hours after the
last. A clock time the spring change skips (2:30 that night) is read with the offset
before the change, so it rings an hour later by the clock (3:30).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.tools.base import ToolError

#: The days a repeating alarm may ring on, Monday first (``date.weekday()``).
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def zone(name: str) -> dt.tzinfo | None:
    """The timezone called ``name``; None: the system's (also for a name not known)."""
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def aware(wall: dt.datetime, tz: dt.tzinfo | None) -> dt.datetime:
    """The clock time ``wall`` (naive) in ``tz`` (None: the system's timezone)."""
    return wall.replace(tzinfo=tz) if tz is not None else wall.astimezone()


def wall(when: dt.datetime, tz: dt.tzinfo | None) -> dt.datetime:
    """``when`` as a clock in ``tz`` shows it (naive)."""
    return when.astimezone(tz).replace(tzinfo=None)


def next_ring(when: dt.datetime, repeat: tuple[str, ...], skip: tuple[str, ...],
              after: float, tz: dt.tzinfo | None, clock: str = "") -> dt.datetime:
    """The first time a repeating alarm rings later than ``after`` (seconds since the
    epoch): at the clock time ``clock`` ("07:00:00"; '': ``when``'s) in ``tz``, from
    ``when``'s day on, on one of the days ``repeat`` names and not on a date in
    ``skip``."""
    local = wall(when, tz)
    at = dt.time.fromisoformat(clock) if clock else local.time()
    day = max(local.date(), wall(dt.datetime.fromtimestamp(after, dt.UTC), tz).date())
    for _ in range(7 * (len(skip) + 2)):
        if DAYS[day.weekday()] in repeat and day.isoformat() not in skip:
            ring = aware(dt.datetime.combine(day, at), tz)
            if ring.timestamp() > after:
                return ring
        day += dt.timedelta(days=1)
    raise ToolError(f"a repeating alarm on {', '.join(repeat) or 'no day'} never rings")
