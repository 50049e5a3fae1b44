"""Things said unprompted: a fired timer is announced in every open conversation.

With no conversation open, the box's own speaker (``voice.output``) says it.
An announcement never takes the daemon down: a failure is logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np

from appliance.voice import alsa
from appliance.voice.audio import float_to_pcm16
from appliance.voice.pipeline import VoiceSession

log = logging.getLogger(__name__)

#: Longest timer label spoken.
MAX_LABEL_CHARS = 100


def said_when_fired(event: dict[str, Any]) -> str:
    """What is said when a timer fires: "Your tea timer is done."; an alarm says its time
    ("It's 7 AM: your alarm.", "It's 5:30 PM: call mom.")."""
    label = "".join(ch for ch in str(event.get("label", "timer")) if ch.isprintable())
    label = label[:MAX_LABEL_CHARS]
    if not event.get("at"):
        return f"Your {label} timer is done."
    try:
        at = dt.datetime.fromisoformat(str(event["at"]))
    except ValueError:
        at = None
    said = at.strftime("%-I:%M %p").replace(":00 ", " ") if at is not None else ""
    what = "your alarm" if label == "alarm" else label
    return f"It's {said}: {what}." if said else f"{what[:1].upper()}{what[1:]}."


class TimerSource(Protocol):
    """What announcements need of the agent's timers tool."""

    def listen(self, callback: Callable[[dict[str, Any]], None]) -> None: ...


class Announcer:
    """Speaks in the conversations it is shown (:meth:`track`), else on ``output``."""

    def __init__(self, output: str, synthesize: Callable[[str], Awaitable[np.ndarray]],
                 tts_rate: Callable[[], int]) -> None:
        self._output = output
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

    def _on_timer(self, event: dict[str, Any]) -> None:
        self.announce(said_when_fired(event))

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
