"""Things said unprompted: a fired timer is announced in every open conversation.

With no conversation open, the box's own speaker (``voice.output``) says it.
An announcement never takes the daemon down: a failure is logged.

A wake-up alarm rings: it is said again every ``voice.alarm_ring_gap_s`` seconds,
``voice.alarm_rings`` times in all, until someone speaks in a conversation
(:meth:`Announcer.dismiss`, called by the voice component on a ``speech_start``). A timer
or a reminder is said once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np

from appliance.tools.timers import ALARM_LABEL
from appliance.voice import alsa
from appliance.voice.audio import float_to_pcm16
from appliance.voice.pipeline import VoiceSession

log = logging.getLogger(__name__)

#: Longest timer label spoken.
MAX_LABEL_CHARS = 100
#: A wake-up alarm is said this many times at most, this many seconds apart (the defaults
#: of voice.alarm_rings and voice.alarm_ring_gap_s).
RINGS = 5
RING_GAP_S = 30.0


def said_when_fired(event: dict[str, Any]) -> str:
    """What is said when a timer fires: "Your tea timer is done."; an alarm says its time
    ("It's 7 AM: your alarm.", "It's 5:30 PM: call mom."), or that it was missed when it
    fires late (the daemon was down, the clock was set right): "You had an alarm at 7 AM."
    """
    label = "".join(ch for ch in str(event.get("label", "timer")) if ch.isprintable())
    label = label[:MAX_LABEL_CHARS]
    if not event.get("at"):
        return f"Your {label} timer is done."
    try:
        at = dt.datetime.fromisoformat(str(event["at"]))
    except ValueError:
        at = None
    said = "" if at is None else "noon" if (at.hour, at.minute) == (12, 0) else \
        "midnight" if (at.hour, at.minute) == (0, 0) else \
        at.strftime("%-I:%M %p").replace(":00 ", " ")  # as the answer that set it said
    alarm = label == ALARM_LABEL
    if event.get("late_s") and said:
        return f"You had an alarm at {said}." if alarm else \
            f"You had a reminder at {said}: {label}."
    what = "your alarm" if alarm else label
    return f"It's {said}: {what}." if said else f"{what[:1].upper()}{what[1:]}."


class TimerSource(Protocol):
    """What announcements need of the agent's timers tool."""

    def listen(self, callback: Callable[[dict[str, Any]], None]) -> None: ...


class Announcer:
    """Speaks in the conversations it is shown (:meth:`track`), else on ``output``."""

    def __init__(self, output: str, synthesize: Callable[[str], Awaitable[np.ndarray]],
                 tts_rate: Callable[[], int], *, rings: int = RINGS,
                 ring_gap_s: float = RING_GAP_S) -> None:
        self._output = output
        self._rings = rings
        self._ring_gap_s = ring_gap_s
        self._ringing: set[asyncio.Event] = set()
        self._synthesize = synthesize
        self._tts_rate = tts_rate
        # Open conversations; a session lives as long as its socket or microphone.
        self._sessions: weakref.WeakSet[VoiceSession] = weakref.WeakSet()
        self._tasks: set[asyncio.Task[None]] = set()
        self.count = 0

    def track(self, session: VoiceSession) -> None:
        """Announce in ``session`` too, while it exists."""
        self._sessions.add(session)

    def listen_timers(self, timers: TimerSource) -> None:
        """Speak fired timers (the agent's timers tool) in every open conversation."""
        timers.listen(self._on_timer)

    def announce(self, text: str) -> asyncio.Task[None]:
        """Say ``text`` in every open conversation, or on the box's speaker if none is open."""
        task = asyncio.get_running_loop().create_task(self._announce(text), name="voice-announce")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def dismiss(self) -> None:
        """Someone spoke: a ringing alarm is not said again (what is being said now is the
        conversation's to barge into)."""
        for stop in self._ringing:
            stop.set()

    @property
    def ringing(self) -> int:
        """Alarms ringing now (said, or waiting to be said again)."""
        return len(self._ringing)

    def _on_timer(self, event: dict[str, Any]) -> None:
        if event.get("dismiss"):  # "stop the alarm", typed or through the LLM
            self.dismiss()
            return
        text = said_when_fired(event)
        if not event.get("at") or event.get("label") != ALARM_LABEL or event.get("late_s"):
            # A timer, a reminder, or an alarm missed ("You had an alarm at 7 AM."): once.
            self.announce(text)
            return
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._ring(text, stop), name="voice-alarm")
        self._tasks.add(task)
        self._ringing.add(stop)

        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._ringing.discard(stop)

        task.add_done_callback(done)

    async def _ring(self, text: str, stop: asyncio.Event) -> None:
        for ring in range(self._rings):
            if ring:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._ring_gap_s)
            if stop.is_set():
                return
            await self._announce(text)

    async def _announce(self, text: str) -> None:
        self.count += 1
        sessions = list(self._sessions)
        try:
            if sessions:
                await asyncio.gather(*(session.announce(text) for session in sessions))
            elif alsa.enabled(self._output):
                speaker = alsa.AplayOutput(self._output)
                await speaker.play(float_to_pcm16(await self._synthesize(text)), self._tts_rate())
                await speaker.finish()
        except Exception:  # an announcement must never take the daemon down
            log.exception("announcing %r failed", text)
