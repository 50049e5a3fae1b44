"""The timers tool: set, list and cancel countdowns and alarms; listeners hear when one fires.

A timer runs for ``seconds``; an alarm (``at``) rings at a clock time, given with its UTC
offset or read in the node's timezone. The voice pipeline listens
(``timers.listen(callback)``) and speaks the label through TTS when one fires;
``dismiss`` tells the listeners to stop a ringing alarm, and ``list`` names the alarms
that rang in the last :data:`RANG_S` seconds (so "stop the alarm" just after it rang
does not cancel the next one).

A countdown runs its seconds on the monotonic clock, whatever the wall clock does. An
alarm is checked at least every :data:`CHECK_S` seconds against the wall clock, so a
clock that is set right late (a board without a battery-backed clock, NTP after boot)
moves it. One that fires more than a minute after its time says so (``late_s``).

With a ``path``, the running timers are kept in that file (written whole and synced,
then renamed over the old one) and :meth:`Timers.resume` sets them again after a
restart: an alarm for 7 AM survives the daemon being restarted at 3. One that came due
while the daemon was down fires at once if it is at most :data:`LATE_S` late, else it
is dropped and logged (a repeating one moves on to its next day). A fired timer nobody
listens to yet (the voice loads after the tools) is kept for the first listener.

An alarm with ``repeat`` (days of the week) rings at the same clock time on each of
them, in the node's timezone (:mod:`appliance.tools.alarm_days`): once it has rung, its
``at`` moves on to the next of its days. ``skip`` leaves out one day (its next, or the
date given) and keeps the rest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from appliance.tools import alarm_days, timers_file
from appliance.tools.alarm_days import DAYS
from appliance.tools.base import Tool, ToolError
from appliance.tools.timer_entry import LATE_SAID_S, Timer

__all__ = ["ALARM_LABEL", "LATE_SAID_S", "Timer", "Timers"]

log = logging.getLogger(__name__)

MAX_TIMERS = 100
MAX_TIMER_S = 7 * 24 * 3600
#: An alarm on a day a week ahead at any hour: "next Tuesday at 11 PM" said on a Tuesday
#: just after midnight is 7 days 23 hours away, and a change of daylight saving time
#: between adds an hour.
MAX_ALARM_S = MAX_TIMER_S + 25 * 3600
#: A timer that came due while the daemon was down still fires this late, not later.
LATE_S = 3600.0
#: The longest a timer waits before the wall clock is looked at again.
CHECK_S = 60.0
#: ``list`` names the alarms that rang this recently.
RANG_S = 600.0
#: ``list`` names the countdowns that were done this recently ("stop the timer" then is
#: about that one, not the next).
DONE_S = 120.0
#: The label of an alarm with nothing to remember: a wake-up alarm, which rings.
ALARM_LABEL = "alarm"
#: Days left out of a repeating alarm are kept this far ahead, no further.
SKIP_DAYS = 35


Listener = Callable[[dict[str, Any]], None]


class Timers(Tool):
    name = "timers"
    description = ("Countdown timers and alarms. action 'set' needs 'seconds' for a timer or "
                   "'at' for an alarm (an ISO 8601 date and time, e.g. "
                   "'2026-12-08T07:00:00'; without an offset it is this node's local time), "
                   "and an optional 'label'; an alarm with 'repeat' (days of the week) rings "
                   "at that clock time on each of them, from 'at' on; 'list' shows the "
                   "running ones, the alarms that just rang and the timers just done; "
                   "'cancel' needs 'id' (a repeating alarm is cancelled on every day); "
                   "'skip' needs 'id' and leaves "
                   "out one day of a repeating alarm (its next, or the date 'on', "
                   "'2026-12-08'); 'dismiss' stops a ringing alarm and forgets the timers "
                   "just done; 'extend' needs 'id' and 'by' (seconds, less than 0 to take "
                   "time off) and puts more time on a countdown; 'pause' needs 'id' and "
                   "stops a countdown where it is, 'resume' runs it on.")
    parameters = {"type": "object",
                  "properties": {"action": {"type": "string",
                                            "enum": ["set", "list", "cancel", "skip",
                                                     "dismiss", "extend", "pause",
                                                     "resume"]},
                                 "by": {"type": "number", "minimum": -MAX_TIMER_S,
                                        "maximum": MAX_TIMER_S},
                                 "seconds": {"type": "number", "exclusiveMinimum": 0,
                                             "maximum": MAX_TIMER_S},
                                 "at": {"type": "string", "maxLength": 40},
                                 "label": {"type": "string", "maxLength": 100},
                                 "repeat": {"type": "array", "items": {"enum": list(DAYS)},
                                            "minItems": 1, "maxItems": 7,
                                            "uniqueItems": True},
                                 "on": {"type": "string", "maxLength": 10},
                                 "id": {"type": "integer", "minimum": 1}},
                  "required": ["action"], "additionalProperties": False}

    def __init__(self, path: Path | None = None, timezone: str = "") -> None:
        self._timers: dict[int, Timer] = {}
        self._next_id = 1
        self._listeners: list[Listener] = []
        self._unheard: list[dict[str, Any]] = []
        self._rang: list[tuple[float, dict[str, Any]]] = []  # (when, event) of alarms
        self._done: list[tuple[float, dict[str, Any]]] = []  # (when, event) of countdowns
        self._path = path
        self._zone = alarm_days.zone(timezone)

    def listen(self, listener: Listener) -> None:
        """Call ``listener(event)`` on the loop when a timer fires (``{"id", "label",
        "seconds"[, "at", "late_s"]}``) or a ringing alarm is dismissed (``{"dismiss":
        true}``); timers that fired before anyone listened go to the first listener."""
        self._listeners.append(listener)
        unheard, self._unheard = self._unheard, []
        for event in unheard:
            self._tell(event)

    async def call(self, args: dict[str, Any]) -> Any:
        action = args["action"]
        if action == "set":
            return {"set": self._set(args).to_json()}
        if action == "list":
            for timer in self._timers.values():
                self._prune(timer)
            now = time.time()
            self._done = [(t, e) for t, e in self._done if now - t <= DONE_S]
            return {"timers": [t.to_json() for t in self._timers.values()],
                    "rang": self._recently_rang(),
                    "done": [{**e, "ago_s": round(now - t)} for t, e in self._done]}
        if action == "dismiss":
            rang = self._recently_rang()
            self._rang, self._done = [], []  # dealt with
            self._tell({"dismiss": True})
            return {"dismissed": rang}
        if "id" not in args:
            raise ToolError(f"'{action}' needs 'id'")
        if action == "skip":
            return self._skip(int(args["id"]), args.get("on"))
        if action == "extend":
            return {"extended": self._extend(int(args["id"]), float(args.get("by", 0)))}
        if action in ("pause", "resume"):
            return {action + "d": self._pause(int(args["id"]), action == "pause")}
        gone = self._timers.pop(int(args["id"]), None)
        if gone is None:
            raise ToolError(f"no timer with id {args['id']}")
        if gone.handle is not None:
            gone.handle.cancel()
        self._save()
        return {"cancelled": gone.to_json()}

    def _recently_rang(self) -> list[dict[str, Any]]:
        now = time.time()
        self._rang = [(t, e) for t, e in self._rang if now - t <= RANG_S]
        return [{**e, "ago_s": round(now - t)} for t, e in self._rang]

    def _set(self, args: dict[str, Any]) -> Timer:
        if ("seconds" in args) == ("at" in args):
            raise ToolError("'set' needs 'seconds' (a timer) or 'at' (an alarm), not both")
        if "repeat" in args and "at" not in args:
            raise ToolError("'repeat' needs 'at' (a repeating alarm rings at a clock time)")
        if len(self._timers) >= MAX_TIMERS:
            raise ToolError(f"too many timers (at most {MAX_TIMERS})")
        now = time.time()
        repeat: tuple[str, ...] = ()
        clock = ""
        if "at" in args:
            when = self._when(str(args["at"]))
            if args.get("repeat") and when.timestamp() - now <= MAX_ALARM_S:
                repeat = tuple(d for d in DAYS if d in args["repeat"])
                # The clock time as given: 2:30 on the night the spring change skips it
                # is still 2:30 on the other days.
                given = dt.datetime.fromisoformat(str(args["at"]))
                clock = (given if given.tzinfo is None else alarm_days.wall(
                    when, self._zone)).time().isoformat()
                # The first of its days from the day of 'at' on, at that clock time.
                when = alarm_days.next_ring(when, repeat, (), max(now, when.timestamp() - 1),
                                            self._zone, clock)
            seconds = when.timestamp() - now
            if seconds <= 0:
                raise ToolError(f"'at' {args['at']!r} has passed; give a time to come")
            if seconds > MAX_ALARM_S:
                raise ToolError(f"'at' {args['at']!r} is more than 8 days away")
            at = when.isoformat(timespec="seconds")
            label = args.get("label") or ALARM_LABEL
        else:
            seconds, at, label = float(args["seconds"]), "", args.get("label") or "timer"
        timer = Timer(self._next_id, label, now + seconds, seconds, at, repeat=repeat,
                      clock=clock)
        self._next_id += 1
        self._arm(timer)
        self._timers[timer.id] = timer
        self._save()
        return timer

    def _extend(self, timer_id: int, by: float) -> dict[str, Any]:
        """More (or less) time on a countdown: its length and what is left change by ``by``."""
        timer = self._countdown(timer_id, "'set' it again at another time")
        left = timer.remaining() + by
        if not 1 <= left <= MAX_TIMER_S:
            raise ToolError(f"timer {timer_id} has {timer.remaining():.0f} s left; it cannot "
                            f"have {left:.0f}")
        if timer.handle is not None:
            timer.handle.cancel()
        timer.due, timer.ends, timer.seconds = timer.due + by, timer.ends + by, \
            max(1.0, timer.seconds + by)
        if timer.paused:
            timer.paused = left
        else:
            self._arm(timer)
        self._save()
        return timer.to_json()

    def _pause(self, timer_id: int, pause: bool) -> dict[str, Any]:
        """Stop a countdown where it is, or run a paused one on (either again: no change)."""
        timer = self._countdown(timer_id, "an alarm rings at its time")
        if pause and not timer.paused:
            if timer.handle is not None:
                timer.handle.cancel()
            timer.pause()
        elif not pause and timer.paused:
            timer.unpause()
            self._arm(timer)
        self._save()
        return timer.to_json()

    def _countdown(self, timer_id: int, for_an_alarm: str) -> Timer:
        """The countdown ``timer_id``; a ToolError saying ``for_an_alarm`` for an alarm."""
        timer = self._timers.get(timer_id)
        if timer is None:
            raise ToolError(f"no timer with id {timer_id}")
        if timer.at:
            raise ToolError(f"timer {timer_id} is an alarm: {for_an_alarm}")
        return timer

    def _when(self, text: str) -> dt.datetime:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ToolError(f"'at' {text!r} is not an ISO 8601 date and time "
                            "like 2026-12-08T07:00:00") from None
        return when if when.tzinfo is not None else alarm_days.aware(when, self._zone)

    def _ring(self, timer: Timer, skip: tuple[str, ...], after: float) -> dt.datetime:
        """A repeating alarm's first ring later than ``after``, leaving out ``skip``."""
        return alarm_days.next_ring(dt.datetime.fromisoformat(timer.at), timer.repeat, skip,
                                    after, self._zone, timer.clock)

    def _today(self) -> dt.date:
        return alarm_days.wall(dt.datetime.now(dt.UTC), self._zone).date()

    def _skip(self, timer_id: int, on: Any) -> dict[str, Any]:
        """Leave out one day of a repeating alarm: its next, or the date ``on``."""
        timer = self._timers.get(timer_id)
        if timer is None:
            raise ToolError(f"no timer with id {timer_id}")
        if not timer.repeat:
            raise ToolError(f"timer {timer_id} does not repeat; 'cancel' it")
        ring = dt.datetime.fromisoformat(timer.at)
        today, first = self._today(), alarm_days.wall(ring, self._zone).date()
        try:
            day = dt.date.fromisoformat(str(on)) if on is not None else first
        except ValueError:
            raise ToolError(f"'on' {on!r} is not a date like 2026-12-08") from None
        if day.isoformat() in timer.skip:
            raise ToolError(f"alarm {timer_id} is already left out on {day.isoformat()}")
        if day < first or DAYS[day.weekday()] not in timer.repeat:
            raise ToolError(f"alarm {timer_id} does not ring on {day.isoformat()}")
        if (day - today).days > SKIP_DAYS:
            raise ToolError(f"'on' {day.isoformat()} is more than {SKIP_DAYS} days away")
        skip = self._to_come(sorted({*timer.skip, day.isoformat()}))
        if len(skip) > timers_file.MAX_SKIPS:
            raise ToolError(f"alarm {timer_id} already leaves out {timers_file.MAX_SKIPS} days")
        self._move(timer, self._ring(timer, skip, time.time()), skip)
        self._save()
        return {"skipped": day.isoformat(), "timer": timer.to_json()}

    def _prune(self, timer: Timer) -> None:
        """Forget the days left out that have gone by."""
        timer.skip = self._to_come(timer.skip)

    def _to_come(self, days: Iterable[str]) -> tuple[str, ...]:
        """The dates (ISO, which sort as dates do) from today on."""
        today = self._today().isoformat()
        return tuple(d for d in days if d >= today)

    def _move(self, timer: Timer, ring: dt.datetime, skip: tuple[str, ...]) -> None:
        """Set a repeating alarm for its next ring."""
        if timer.handle is not None:
            timer.handle.cancel()
        timer.at, timer.due, timer.skip = ring.isoformat(timespec="seconds"), \
            ring.timestamp(), skip
        timer.seconds = max(0.0, round(timer.due - time.time(), 1))
        self._arm(timer)

    def _arm(self, timer: Timer) -> None:
        delay = max(0.0, timer.remaining())
        if timer.at:
            delay = min(CHECK_S, delay)
        timer.handle = asyncio.get_running_loop().call_later(delay, self._check, timer.id)

    def _check(self, timer_id: int) -> None:
        """Fire the timer if its time has come (an alarm's by the wall clock), else wait."""
        timer = self._timers.get(timer_id)
        if timer is None or timer.paused:
            return
        if timer.remaining() > 0:
            self._arm(timer)
            return
        self._fire(timer)

    def resume(self) -> None:
        """Set again the timers kept in the file (on the running loop)."""
        if self._path is None:
            return
        kept = timers_file.load(self._path)
        if kept is None:
            return
        next_id, items = kept
        now = time.time()
        timers = [Timer(**item) for item in items]
        for timer in timers[:MAX_TIMERS]:
            try:
                if timer.repeat and timer.due < now - LATE_S:
                    # Missed while the daemon was down: its next day.
                    log.warning("repeating alarm %d (%s) was missed while the daemon was "
                                "down; it rings next on its next day", timer.id, timer.label)
                    timer.at = self._ring(timer, timer.skip, now).isoformat(timespec="seconds")
                    timer.due = dt.datetime.fromisoformat(timer.at).timestamp()
                elif timer.due < now - LATE_S and not timer.paused:
                    log.warning("timer %d (%s) came due while the daemon was down; dropped",
                                timer.id, timer.label)
                    continue
                self._prune(timer)
                if not timer.paused:
                    self._arm(timer)
            except (ValueError, OverflowError, ToolError) as exc:  # a time no clock has
                log.warning("timer %d (%s) kept with a time that cannot be (%s); dropped",
                            timer.id, timer.label, exc)
                continue
            self._timers[timer.id] = timer
        self._next_id = max([next_id] + [t.id + 1 for t in timers])
        self._save()

    def suspend(self) -> None:
        """Stop every timer here; the file keeps them for :meth:`resume`."""
        for timer in self._timers.values():
            if timer.handle is not None:
                timer.handle.cancel()
        self._timers.clear()

    def _save(self) -> None:
        if self._path is not None:
            timers_file.save(self._path, self._next_id,
                             [t.kept() for t in self._timers.values()])

    def _fire(self, timer: Timer) -> None:
        event = timer.event()
        if timer.repeat:  # rings again on its next day
            now = time.time()
            ring = self._ring(timer, timer.skip, max(now, timer.due) + 1)
            self._move(timer, ring, self._to_come(timer.skip))
        else:
            self._timers.pop(timer.id, None)
        self._save()
        log.info("timer %d (%s) fired%s", timer.id, timer.label,
                 f", {event['late_s']} s late" if "late_s" in event else "")
        if timer.at:
            self._rang = [*self._rang, (time.time(), event)][-MAX_TIMERS:]
        else:
            self._done = [*self._done, (time.time(), event)][-MAX_TIMERS:]
        if not self._listeners:
            self._unheard = [*self._unheard, event][-MAX_TIMERS:]
            return
        self._tell(event)

    def _tell(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("a timer listener failed")
