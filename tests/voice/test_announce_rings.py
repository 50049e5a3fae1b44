"""The announcer's rings, without models: a wake-up alarm is said again until dismissed; a
missed one, a reminder and a timer are said once. The conversation is a small
hand-written double (what it was told to say), as the real one needs a sound card or a
socket and the voice models (tests/voice/test_alarm_ringing.py runs those)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import numpy as np

from appliance.voice.announce import Announcer
from appliance.voice.pipeline import VoiceSession

RINGS = 3
GAP_S = 0.05


class SaidDouble:
    """Stands in for a VoiceSession: keeps what it was asked to say."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.changed = asyncio.Event()

    async def announce(self, text: str) -> None:
        self.said.append(text)
        self.changed.set()


async def _silence(_text: str) -> np.ndarray:
    return np.zeros(0, np.float32)


async def _rung_out(announcer: Announcer) -> None:
    while announcer.ringing:  # noqa: ASYNC110 - the ring task ends by itself
        await asyncio.sleep(GAP_S / 2)


async def test_rings_and_what_is_said_once() -> None:
    announcer = Announcer("none", _silence, lambda: 22050, rings=RINGS, ring_gap_s=GAP_S)
    session = SaidDouble()
    announcer.track(cast(VoiceSession, session))
    alarm: dict[str, Any] = {"id": 1, "label": "alarm", "seconds": 60,
                             "at": "2026-12-08T07:00:00+00:00"}

    announcer._on_timer(alarm)
    await _rung_out(announcer)
    assert session.said == ["It's 7 AM: your alarm."] * RINGS

    session.said.clear()
    announcer._on_timer(alarm)
    while not session.said:
        session.changed.clear()
        await session.changed.wait()
    announcer._on_timer({"dismiss": True})  # "turn off the alarm", typed
    await _rung_out(announcer)
    assert session.said == ["It's 7 AM: your alarm."]

    session.said.clear()
    for event in ({**alarm, "late_s": 1200}, {**alarm, "label": "call mum"},
                  {"id": 2, "label": "tea", "seconds": 60}):
        announcer._on_timer(event)
    await asyncio.gather(*announcer._tasks)
    assert session.said == ["You had an alarm at 7 AM.", "It's 7 AM: call mum.",
                            "Your tea timer is done."]
