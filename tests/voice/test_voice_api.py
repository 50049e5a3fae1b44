"""Voice over a real daemon's HTTP: /api/stt, /api/tts and a whole turn on the /api/voice socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from appliance.voice.audio import read_wav, rms, write_wav
from tests.support.fake_audio import FakeMicrophone, wav_to_pcm16

pytestmark = pytest.mark.model

TURN_TIMEOUT_S = 120.0
#: voice.max_stt_bytes of the first daemon: above the 21 s WAV, so that one hits the duration bound.
MAX_STT_BYTES = 1 << 20


def _voice(models_dir: Path, **extra: Any) -> dict[str, Any]:
    return {"node": {"models_dir": str(models_dir)},
            "voice": {"enabled": True, "language": "en", "max_utterance_s": 20.0, **extra}}


async def _post(url: str, **kw: Any) -> tuple[int, Any, bytes]:
    async with aiohttp.ClientSession() as http, http.post(url, **kw) as resp:
        body = await resp.read()
        data = json.loads(body) if resp.content_type == "application/json" else None
        return resp.status, data, body


async def test_stt_tts_bad_input_and_a_turn_without_an_llm(daemon_factory, models_dir: Path,
                                               speech: Callable[..., bytes]) -> None:
    d = await daemon_factory(**_voice(models_dir, max_stt_bytes=MAX_STT_BYTES,
                                      partial_transcripts=True))
    wav = speech("Turn on the kitchen lights please", rate=44100, channels=2)
    status, data, _ = await _post(f"{d.url}/api/stt", data=wav,
                                  headers={"Content-Type": "audio/wav"})
    assert status == 200, data
    assert "kitchen" in data["text"].lower() and data["language"] == "en"
    assert data["duration_s"] == pytest.approx(read_wav(wav).duration_s, abs=0.01)

    status, data, body = await _post(f"{d.url}/api/tts", json={"text": "Hello from the box."})
    assert status == 200
    audio = read_wav(body)
    assert audio.rate == 22050 and audio.duration_s > 0.5 and rms(audio.samples) > 0.02

    bad_stt = [
        (b"", 400, "empty"),
        (b"GIF89a not a wav", 400, "not a WAV"),
        (write_wav(np.zeros(8000, np.float32), 8000), 400, "silent"),
        (write_wav(np.full(16000 * 21, 0.1, np.float32), 16000), 413, "21.0 s"),
    ]
    for body_in, want, words in bad_stt:
        status, data, _ = await _post(f"{d.url}/api/stt", data=body_in)
        assert status == want, (words, data)
        assert words in data["error"]["message"], data
    # More bytes than voice.max_stt_bytes: refused on the announced length, and on a chunked
    # upload (no length announced) once the limit is passed, with the same code.
    too_big = write_wav(np.full(MAX_STT_BYTES // 2, 0.1, np.float32), 16000)

    async def chunked() -> AsyncIterator[bytes]:
        for i in range(0, len(too_big), 1 << 16):
            yield too_big[i:i + (1 << 16)]

    for body_in in (too_big, chunked()):
        status, data, _ = await _post(f"{d.url}/api/stt", data=body_in,
                                      headers={"Content-Type": "audio/wav"})
        assert status == 413, data
        assert data["error"]["code"] == "audio_too_large", data
        assert f"at most {MAX_STT_BYTES}" in data["error"]["message"], data
        assert "voice.max_stt_bytes" in data["error"]["message"], data
    bad_tts = [({"text": ""}, "empty"), ({"text": "x" * 4001}, "4001 characters"),
               ({}, "empty"), ([1, 2], "JSON object")]
    for body_in, words in bad_tts:
        status, data, _ = await _post(f"{d.url}/api/tts", json=body_in)
        assert status == 400 and words in data["error"]["message"], data
    status, data, _ = await _post(f"{d.url}/api/tts", data=b"{not json",
                                  headers={"Content-Type": "application/json"})
    assert status == 400 and "not valid JSON" in data["error"]["message"]
    # The daemon carries on after all that.
    code, health = await d.get_json("/health")
    assert code == 200 and health["ready"] is True and health["unhealthy"] == []
    status, data, _ = await _post(f"{d.url}/api/stt", data=speech("Good morning"))
    assert status == 200 and "morning" in data["text"].lower()
    await _no_llm_turn_and_bad_socket_input(d, speech)


async def _talk(url: str, pcm: bytes, *, end: bool = False,
                query: str = "") -> list[tuple[str, Any]]:
    """Feed ``pcm`` in real time over /api/voice; every message until the turn is done."""
    out: list[tuple[str, Any]] = []
    mic = FakeMicrophone().speech(pcm).silence(0.0 if end else 1.0)
    async with aiohttp.ClientSession() as http, \
            http.ws_connect(f"{url}/api/voice{query}") as ws:
        await ws.send_str(json.dumps({"type": "start", "sample_rate": 16000}))
        async for chunk in mic.chunks():
            await ws.send_bytes(chunk)
        if end:
            await ws.send_str(json.dumps({"type": "end"}))
        while True:
            msg = await ws.receive(timeout=TURN_TIMEOUT_S)
            if msg.type == aiohttp.WSMsgType.BINARY:
                out.append(("pcm", msg.data))
                continue
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            event = json.loads(msg.data)
            out.append((event["type"], event))
            if event["type"] == "done":
                return out


async def _no_llm_turn_and_bad_socket_input(d: Any, speech: Callable[..., bytes]) -> None:
    """Without an LLM a voice turn says so (STT still works); bad socket input is answered.
    (An everyday request, the time, would be answered by an intent: this one needs the LLM.)"""
    pcm = wav_to_pcm16(speech("Tell me about the history of Rome.", pad=(0.3, 0.0)))
    messages = await _talk(d.url, pcm, end=True)
    kinds = [k for k, _ in messages]
    final = next(i for i, (k, e) in enumerate(messages) if k == "transcript" and e["final"])
    assert "rome" in messages[final][1]["text"].lower()
    error = next(e for k, e in messages if k == "error")
    assert error["code"] == "no_llm_available" and "llm" in error["message"].lower()
    assert final < kinds.index("error") and "pcm" not in kinds
    # voice.partial_transcripts is on: while a long utterance is spoken, the utterance so far
    # arrives as final:false transcripts, before the end of speech; the final one after it.
    pcm = wav_to_pcm16(speech("Please turn on the lights in the kitchen and then open the "
                              "window in the living room", pad=(0.3, 0.0)))
    messages = await _talk(d.url, pcm)
    kinds = [k for k, _ in messages]
    transcripts = [(i, e) for i, (k, e) in enumerate(messages) if k == "transcript"]
    partials = [i for i, e in transcripts if e["final"] is False]
    finals = [(i, e) for i, e in transcripts if e["final"] is True]
    assert partials and partials[0] < kinds.index("speech_end"), messages
    assert all(messages[i][1]["text"].strip() for i in partials)
    assert len(finals) == 1 and finals[0][0] > kinds.index("speech_end") > max(partials)
    assert "window" in finals[0][1]["text"].lower()
    # Bad control messages are answered, not fatal; a bad conversation id is a 400.
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{d.url}/api/voice") as ws:
            await ws.send_str("not json")
            hello = json.loads((await ws.receive(timeout=10)).data)
            assert hello["type"] == "state"
            err = json.loads((await ws.receive(timeout=10)).data)
            assert err["type"] == "error" and err["code"] == "invalid_message"
            await ws.send_str(json.dumps({"type": "start", "sample_rate": 5}))
            err = json.loads((await ws.receive(timeout=10)).data)
            assert err["code"] == "invalid_sample_rate"
        async with http.get(f"{d.url}/api/voice?conversation_id=a%20b") as resp:
            assert resp.status == 400
    code, health = await d.get_json("/health")
    assert code == 200 and health["ready"] is True


async def test_whole_voice_turn_over_the_websocket_with_the_real_llm(
        daemon_factory, models_dir: Path, speech: Callable[..., bytes]) -> None:
    d = await daemon_factory(llm={"mode": "local", "slots": 1, "context": 1024},
                             **_voice(models_dir))
    pcm = wav_to_pcm16(speech("What is the capital of France?", pad=(0.3, 0.0)))
    messages = await _talk(d.url, pcm)
    kinds = [k for k, _ in messages]
    assert "error" not in kinds, messages
    first = {k: kinds.index(k) for k in ("speech_start", "speech_end", "transcript",
                                          "reply_text", "audio", "pcm", "reply", "done")}
    # transcript, then reply text, then reply audio, in that order.
    assert first["speech_start"] < first["speech_end"] < first["transcript"] \
        < first["reply_text"] < first["audio"] < first["pcm"] < first["done"], kinds
    transcript = messages[first["transcript"]][1]
    assert "capital" in transcript["text"].lower()
    reply = messages[first["reply"]][1]
    deltas = "".join(e["text"] for k, e in messages if k == "reply_text")
    assert reply["text"] == deltas and reply["text"].strip() and reply["cut_off"] is False
    # Each binary message follows its "audio" event and holds what it announced.
    pcm_total = 0
    for i, (k, e) in enumerate(messages):
        if k == "audio":
            assert messages[i + 1][0] == "pcm"
            assert len(messages[i + 1][1]) == 2 * e["samples"] and e["sample_rate"] == 22050
            pcm_total += e["samples"]
    audio = np.frombuffer(b"".join(m for k, m in messages if k == "pcm"), np.int16)
    assert len(audio) == pcm_total and rms(audio) > 0.02  # rms is in full-scale units
    await _barge_in_over_the_socket(d.url, speech)
    _, status = await d.get_json("/api/status")
    assert status["components"]["voice"]["reply_source"] in ("agent", "llm")
    print(f"heard {transcript['text']!r}, answered {reply['text']!r}")


async def _barge_in_over_the_socket(url: str, speech: Callable[..., bytes]) -> None:
    """Speech as soon as a long reply's audio arrives: ``audio_stop`` before any more audio,
    then ``barge_in`` and the reply recorded as cut off where it stopped."""
    # Asked for a long answer and interrupted at its first audio, so the reply is still
    # playing (and generating) when the interruption is heard, however fast this box is.
    question = wav_to_pcm16(speech("Tell me a long story about a dragon.", pad=(0.3, 0.0)))
    interrupt = wav_to_pcm16(speech("Stop. Wait a moment."))
    events: list[dict[str, Any]] = []
    first_audio = asyncio.Event()
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/api/voice") as ws:

        async def receive() -> None:
            """Until the cut-off reply, or (failing that) the interruption's own turn is done."""
            while True:
                msg = await ws.receive(timeout=TURN_TIMEOUT_S)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    events.append({"type": "pcm", "bytes": len(msg.data)})
                    first_audio.set()
                    continue
                assert msg.type == aiohttp.WSMsgType.TEXT, msg
                events.append(json.loads(msg.data))
                if events[-1]["type"] == "reply" and events[-1]["cut_off"]:
                    return
                if [e["type"] for e in events].count("done") == 2:
                    return

        receiver = asyncio.create_task(receive())
        mic = FakeMicrophone().speech(question).silence_until(first_audio) \
            .speech(interrupt).silence(1.0)
        async for chunk in mic.chunks():
            if receiver.done():
                break
            await ws.send_bytes(chunk)
        await asyncio.wait_for(receiver, TURN_TIMEOUT_S)
    kinds = [e["type"] for e in events]
    assert "audio_stop" in kinds and "barge_in" in kinds, kinds
    # Playback is stopped first (audio_stop), then the barge-in is reported.
    assert kinds.index("audio") < kinds.index("audio_stop") < kinds.index("barge_in"), kinds
    # After audio_stop no more of the reply's audio came: no audio event, no PCM.
    reply_at = next(i for i, e in enumerate(events) if e["type"] == "reply")
    after_stop = kinds[kinds.index("audio_stop"):reply_at]
    assert "audio" not in after_stop and "pcm" not in after_stop, kinds
    # The reply is recorded as cut off where it stopped: the words heard are fewer than the
    # words generated (the rest was pending synthesis or playback when the stop came).
    reply = events[reply_at]
    assert reply["cut_off"] is True and reply_at > kinds.index("barge_in")
    assert reply["spoken"].endswith("…"), reply
    heard = reply["spoken"].removesuffix("…").split()
    assert heard == reply["text"].split()[: len(heard)]
    assert len(heard) < len(reply["text"].split()), reply
