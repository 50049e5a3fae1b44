"""Issue 15, item 3: client voice work is bounded (a queue answering 503 with Retry-After, a
per-client limit) and cannot hold up another client's short request or a conversation."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.voice.admission import QUEUE, Admission, VoiceBusy, speech_pieces
from tests.support.fake_audio import FakeMicrophone, wav_to_pcm16

#: A text long enough to keep the voice busy for seconds on any CPU: many short sentences
#: (about 100 s of speech, 8 s to synthesise on a quiet 2-core box).
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "
LONG = SENTENCE * 24
TIMEOUT = aiohttp.ClientTimeout(total=600)


async def test_admission_bounds_the_queue_and_each_client_and_serves_in_order() -> None:
    adm = Admission(1, queue=2, per_client=2)
    order: list[str] = []
    release = asyncio.Event()

    async def job(client: str, name: str) -> None:
        async with adm.request(client), adm.turn():
            order.append(name)
            await release.wait()

    tasks = [asyncio.ensure_future(job(c, n)) for c, n in (("a", "a1"), ("b", "b1"),
                                                            ("a", "a2"))]
    await asyncio.sleep(0)
    with pytest.raises(VoiceBusy) as busy:
        async with adm.request("a"):
            pass
    assert busy.value.per_client and busy.value.retry_after_s >= 1
    with pytest.raises(VoiceBusy) as full:
        async with adm.request("c"):
            pass
    assert not full.value.per_client and "queue is full" in str(full.value)
    assert adm.describe() == {"admitted": 3, "running": 1, "waiting": 2, "refused": 2}
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["a1", "b1", "a2"]
    # A waiter that gives up passes its place on and leaves nothing behind.
    release.clear()
    first = asyncio.ensure_future(job("x", "x1"))
    await asyncio.sleep(0)
    quitter = asyncio.ensure_future(job("y", "y1"))
    await asyncio.sleep(0)
    quitter.cancel()
    release.set()
    await first
    assert adm.describe()["running"] == 0 and adm.describe()["admitted"] == 0
    assert speech_pieces("One. Two three four five six. Seven eight nine ten eleven.") == [
        "One. Two three four five six.", "Seven eight nine ten eleven."]


def _client(n: int) -> aiohttp.ClientSession:
    """A session whose connections come from 127.0.0.<n>: another client to the daemon."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(f"127.0.0.{n}", 0)),
                                 timeout=TIMEOUT)


@pytest.mark.model
async def test_a_short_request_and_a_conversation_pass_long_queued_speech(
        daemon_factory: Callable[..., Any], models_dir: Path,
        speech: Callable[..., bytes]) -> None:
    """Red team: three queued 4000-character /api/tts made a 2 s /api/stt take 20.4 s."""
    d = await daemon_factory(node={"models_dir": str(models_dir)},
                             voice={"enabled": True, "language": "en"})
    done: dict[str, float] = {}

    async def tts(session: aiohttp.ClientSession, name: str,
                  text: str = LONG) -> tuple[int, dict[str, str]]:
        async with session.post(d.url + "/api/tts", json={"text": text}) as r:
            await r.read()
            done[name] = time.monotonic()
            return r.status, dict(r.headers)

    async def queue_holds(admitted: int) -> None:
        """Until the voice queue has ``admitted`` requests (running or waiting)."""
        async with aiohttp.ClientSession(timeout=TIMEOUT) as s:
            for _ in range(600):
                async with s.get(d.url + "/api/status") as r:
                    if (await r.json())["components"]["voice"]["queue"]["admitted"] >= admitted:
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"the voice queue never held {admitted} requests")

    a = _client(1)
    long_ones = [asyncio.ensure_future(tts(a, f"a{i}")) for i in range(2)]
    await queue_holds(2)
    status, headers = await tts(a, "a-third")  # a third from the same client
    assert status == 429 and int(headers["Retry-After"]) >= 1
    # Another client's 2 s transcription is done long before the first long text is spoken.
    b = _client(2)
    async with b.post(d.url + "/api/stt", data=speech("Turn on the kitchen lights please"),
                      headers={"Content-Type": "audio/wav"}) as r:
        assert r.status == 200 and "kitchen" in (await r.json())["text"].lower()
        stt_done = time.monotonic()
    # And so is a conversation's turn (the box's own microphone takes the same path).
    pcm = wav_to_pcm16(speech("What time is it?", pad=(0.3, 0.0)))
    transcript_at = None
    async with aiohttp.ClientSession(timeout=TIMEOUT) as s, \
            s.ws_connect(f"{d.url}/api/voice") as ws:
        await ws.send_str(json.dumps({"type": "start", "sample_rate": 16000}))
        async for chunk in FakeMicrophone().speech(pcm).silence(0.0).chunks():
            await ws.send_bytes(chunk)
        await ws.send_str(json.dumps({"type": "end"}))
        while transcript_at is None:
            msg = await ws.receive(timeout=300)
            assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
            if msg.type == aiohttp.WSMsgType.TEXT:
                event = json.loads(msg.data)
                if event["type"] == "transcript" and event.get("final"):
                    assert "time" in event["text"].lower()
                    transcript_at = time.monotonic()
    # Then the queue fills: one running and QUEUE waiting, whoever they are; the rest get 503.
    # a0 is still being spoken and a1 waits, so QUEUE - 1 fillers get in and the other four
    # are refused, each long before the long text is spoken. (Which of them come back first
    # is the scheduler's business: refusals may arrive one by one, between admissions.)
    others = [_client(10 + i) for i in range(QUEUE + 3)]
    fillers = [asyncio.ensure_future(tts(s, f"f{i}", SENTENCE * 2)) for i, s in enumerate(others)]
    results = await asyncio.gather(*long_ones, *fillers)
    assert [status for status, _ in results[:2]] == [200, 200]
    refused = [(f"f{i}", headers) for i, (status, headers) in enumerate(results[2:])
               if status != 200]
    assert len(refused) == len(fillers) - (QUEUE - 1), [status for status, _ in results]
    for name, headers in refused:
        assert results[2 + int(name[1:])][0] == 503 and int(headers["Retry-After"]) >= 1
        assert done[name] < done["a0"], "the long text was spoken before the queue filled"
    assert stt_done < done["a0"] and transcript_at < done["a0"], (stt_done, transcript_at, done)
    for session in (a, b, *others):
        await session.close()
    assert "Traceback" not in d.log()


async def test_a_closed_admission_refuses_every_turn_waiting_or_new() -> None:
    """At shutdown the executor goes away: a waiting job must get 503, not a traceback."""
    adm = Admission(1)
    release = asyncio.Event()

    async def hold() -> None:
        async with adm.request("a"), adm.turn():
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await asyncio.sleep(0)

    async def wait_for_turn() -> None:
        async with adm.request("b"), adm.turn():
            pass

    waiter = asyncio.ensure_future(wait_for_turn())
    await asyncio.sleep(0)
    adm.close()
    with pytest.raises(VoiceBusy, match="stopping"):
        await waiter
    with pytest.raises(VoiceBusy, match="stopping"):
        async with adm.request("c"), adm.turn():
            pass
    release.set()
    await holder
