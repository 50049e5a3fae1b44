"""A wake-up alarm rings on a real daemon's /api/voice socket: said again and again
(voice.alarm_rings times, voice.alarm_ring_gap_s apart) until someone speaks; a reminder
is said once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.net.peer import PeerClient
from appliance.security.keys import create_key_file
from appliance.security.signing import Signer
from appliance.tools.base import invoke
from appliance.tools.remote import RemoteToolProxy
from appliance.tools.timers import Timers
from tests.support.fake_audio import FakeMicrophone, wav_to_pcm16

pytestmark = pytest.mark.model

TIMEOUT_S = 120.0
RINGS = 3
#: Longer than it takes to say "I'm up" into the socket after a ring.
GAP_S = 6.0


async def _until(ws: aiohttp.ClientWebSocketResponse, seen: list[dict[str, Any]],
                 kind: str, count: int) -> None:
    """Read the socket's events into ``seen`` until ``count`` of ``kind`` are there."""
    while sum(e["type"] == kind for e in seen) < count:
        msg = await ws.receive(timeout=TIMEOUT_S)
        if msg.type == aiohttp.WSMsgType.TEXT:
            seen.append(json.loads(msg.data))


def _said(seen: list[dict[str, Any]]) -> list[str]:
    return [e["text"] for e in seen if e["type"] == "announcement"]


async def _rung_out(d: Any) -> dict[str, Any]:
    """The voice component's stats once no alarm rings (the daemon's own status)."""
    while True:
        _, status = await d.get_json("/api/status")
        voice = status["components"]["voice"]
        if voice["alarms_ringing"] == 0:
            return voice
        await asyncio.sleep(0.2)


async def test_an_alarm_rings_until_someone_speaks(daemon_factory: Callable[..., Any],
                                                    models_dir: Path, tmp_path: Path,
                                                    speech: Callable[..., bytes]) -> None:
    key_file = tmp_path / "cluster.key"
    key = create_key_file(key_file)
    d = await daemon_factory(
        node={"tier": "core", "models_dir": str(models_dir)},
        voice={"enabled": True, "language": "en", "alarm_rings": RINGS,
               "alarm_ring_gap_s": GAP_S},
        tools={"serve": True, "enabled": ["timers"]},
        security={"cluster_key_file": str(key_file)})
    timers = RemoteToolProxy(Timers, PeerClient(lambda: d.url, Signer(key).sign_headers))

    async def alarm(label: str) -> None:
        at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
        obs = await invoke(timers, {"action": "set", "at": at.isoformat(), "label": label},
                           TIMEOUT_S)
        assert obs["ok"], obs

    seen: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{d.url}/api/voice") as ws:
            await ws.send_str(json.dumps({"type": "start", "sample_rate": 16000}))
            # Nobody answers: it rings RINGS times, then stops.
            await alarm("alarm")
            await _until(ws, seen, "announcement", RINGS)
            assert (await _rung_out(d))["announcements"] == RINGS
            said = _said(seen)
            assert len(set(said)) == 1 and said[0].startswith("It's ") and \
                said[0].endswith(": your alarm."), said

            # Someone speaks after the first ring: no second one.
            await alarm("alarm")
            await _until(ws, seen, "announcement", RINGS + 1)
            mic = FakeMicrophone().speech(wav_to_pcm16(speech("Okay, I'm up."))).silence(1.0)
            async for chunk in mic.chunks():
                await ws.send_bytes(chunk)
            await _until(ws, seen, "speech_start", 1)
            assert (await _rung_out(d))["announcements"] == RINGS + 1
            assert len(_said(seen)) == RINGS + 1

            # A reminder is said once.
            await alarm("take the bins out")
            await _until(ws, seen, "announcement", RINGS + 2)
            assert (await _rung_out(d))["announcements"] == RINGS + 2
            assert _said(seen)[-1].endswith(": take the bins out.")
    finally:
        await timers.client.close()
