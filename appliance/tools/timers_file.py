"""The file the timers tool keeps its running timers in (``<state_dir>/timers.json``).

``{"next_id": N, "timers": [{"id", "label", "due", "seconds", "at"[, "repeat", "skip"]},
...]}`` (a repeating alarm's days, ``["mon", "fri"]``, and the dates it leaves out), written
whole to a new file, synced, then renamed over the old one: a power cut leaves the old
file or the new one. A file that cannot be read back as that (not JSON, a field of the
wrong kind, a time that is no time) is renamed ``timers.json.unreadable`` and logged,
never half read; the daemon starts with no timers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError
from appliance.tools.alarm_days import DAYS

log = logging.getLogger(__name__)

#: Largest timers file read back (100 timers take about 20 kB).
MAX_FILE_BYTES = 1 << 20
MAX_ID = 1 << 53
MAX_LABEL_CHARS = 100
MAX_SKIPS = 16
#: A paused countdown keeps at most this many seconds left (the longest countdown).
MAX_PAUSED_S = 7 * 24 * 3600


class _Unreadable(ApplianceError):
    """What makes the file unreadable."""


def load(path: Path) -> tuple[int, list[dict[str, Any]]] | None:
    """(the next id, the timers) kept in ``path``; None when there is none, or it was
    unreadable (and has been set aside)."""
    if not path.exists():
        return None
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise _Unreadable(f"larger than {MAX_FILE_BYTES} bytes")
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("timers"), list):
            raise _Unreadable("not {'next_id': ..., 'timers': [...]}")
        next_id = _whole(data.get("next_id"), "next_id")
        return next_id, [_timer(item) for item in data["timers"]]
    except (OSError, ValueError, TypeError, RecursionError, _Unreadable) as exc:
        aside = path.with_name(path.name + ".unreadable")
        log.warning("timers file %s is unreadable (%s); kept as %s", path, exc, aside)
        try:
            os.replace(path, aside)
        except OSError as move:
            log.error("could not set %s aside: %s", path, move)
        return None


def save(path: Path, next_id: int, items: list[dict[str, Any]]) -> None:
    """Write the timers; a failure (a full disk) is logged, never raised: a timer runs on."""
    fresh = path.with_name(path.name + ".new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(fresh, "w") as out:
            out.write(json.dumps({"next_id": next_id, "timers": items}))
            out.flush()
            os.fsync(out.fileno())
        os.replace(fresh, path)
    except OSError as exc:
        log.error("could not keep the timers in %s: %s", path, exc)


def _whole(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_ID:
        raise _Unreadable(f"{name} is {value!r}, not a whole number from 1")
    return value


def _number(value: Any, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or \
            not math.isfinite(value):
        raise _Unreadable(f"{name} is {value!r}, not a number")
    return float(value)


def _timer(item: Any) -> dict[str, Any]:
    """A timer's fields as the file keeps them, checked."""
    if not isinstance(item, dict):
        raise _Unreadable(f"a timer is {type(item).__name__}, not an object")
    label, at = item.get("label"), item.get("at", "")
    if not isinstance(label, str) or not label or len(label) > MAX_LABEL_CHARS:
        raise _Unreadable(f"label {label!r} is not a name of 1 to {MAX_LABEL_CHARS} characters")
    if not isinstance(at, str):
        raise _Unreadable(f"at {at!r} is not a time")
    if at:
        try:
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            raise _Unreadable(f"at {at!r} is not an ISO 8601 time") from None
        if when.tzinfo is None:
            raise _Unreadable(f"at {at!r} has no UTC offset")
    repeat, skip, clock = item.get("repeat", []), item.get("skip", []), item.get("clock", "")
    if not isinstance(repeat, list) or not all(isinstance(d, str) for d in repeat) or \
            len(set(repeat)) != len(repeat) or any(d not in DAYS for d in repeat) or \
            (repeat and not at):
        raise _Unreadable(f"repeat {repeat!r} is not days of an alarm like ['mon', 'fri']")
    if not isinstance(skip, list) or len(skip) > MAX_SKIPS or \
            not all(isinstance(d, str) and _date(d) for d in skip) or \
            len(set(skip)) != len(skip):
        raise _Unreadable(f"skip {skip!r} is not a list of dates like '2026-12-08'")
    if not isinstance(clock, str) or (clock and not _CLOCK.fullmatch(clock)):
        raise _Unreadable(f"clock {clock!r} is not a clock time like '07:00:00'")
    paused = _number(item.get("paused", 0.0), "paused")
    if paused and (at or not 0 < paused <= MAX_PAUSED_S):
        raise _Unreadable(f"paused {paused!r} is not a countdown's seconds left")
    return {"id": _whole(item.get("id"), "id"), "label": label, "paused": paused,
            "due": _number(item.get("due"), "due"),
            "seconds": _number(item.get("seconds"), "seconds"), "at": at,
            "repeat": tuple(repeat), "skip": tuple(skip), "clock": clock}


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?")


def _date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        return bool(dt.date.fromisoformat(text))
    except ValueError:
        return False
