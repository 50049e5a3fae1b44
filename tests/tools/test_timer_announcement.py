"""A daemon's own timers tool, when a timer fires, is spoken on every open /api/voice socket."""

from __future__ import annotations

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

pytestmark = pytest.mark.model

CALL_TIMEOUT_S = 30.0
#: From setting the timer to its audio: TTS on a loaded box included.
ANNOUNCE_TIMEOUT_S = 120.0
TIMER_S = 1.0


async def test_a_fired_timer_is_announced_with_audio_on_the_voice_socket(
        daemon_factory: Callable[..., Any], models_dir: Path, tmp_path: Path) -> None:
    key_file = tmp_path / "cluster.key"
    key = create_key_file(key_file)
    d = await daemon_factory(
        node={"tier": "core", "models_dir": str(models_dir)},
        voice={"enabled": True, "language": "en"},
        tools={"serve": True, "enabled": ["timers"]},
        security={"cluster_key_file": str(key_file)})
    client = PeerClient(lambda: d.url, Signer(key).sign_headers)
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(f"{d.url}/api/voice") as ws:
            hello = json.loads((await ws.receive(timeout=ANNOUNCE_TIMEOUT_S)).data)
            assert hello["type"] == "state"  # the conversation is open: it will hear the timer
            # The daemon's own timers tool, through its tool server (signed, like a peer).
            obs = await invoke(RemoteToolProxy(Timers, client),
                               {"action": "set", "seconds": TIMER_S, "label": "tea"},
                               CALL_TIMEOUT_S)
            assert obs["ok"] is True and obs["result"]["set"]["label"] == "tea", obs
            seen: list[Any] = []
            while not seen or not isinstance(seen[-1], bytes):
                msg = await ws.receive(timeout=ANNOUNCE_TIMEOUT_S)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    seen.append(msg.data)
                else:
                    assert msg.type == aiohttp.WSMsgType.TEXT, msg
                    seen.append(json.loads(msg.data))
        events = [e for e in seen if isinstance(e, dict) and e["type"] != "state"]
        assert [e["type"] for e in events] == ["announcement", "audio"], seen
        assert events[0]["text"] == "Your tea timer is done."
        header, pcm = events[1], seen[-1]
        assert header["samples"] * 2 == len(pcm) and header["sample_rate"] > 0
        assert header["samples"] > header["sample_rate"] // 2  # more than half a second of speech
        assert any(pcm[i] for i in range(0, len(pcm), 97))  # not silence
        _, status = await d.get_json("/api/status")
        assert status["components"]["voice"]["announcements"] == 1
    finally:
        await client.close()
