"""The Wyoming server of a real daemon, driven by the `wyoming` package's own client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop
from wyoming.wake import Detect, Detection

from appliance.voice.audio import rms
from appliance.voice.tts import Synthesizer
from appliance.wyoming.framing import MAX_PAYLOAD_BYTES
from tests.support.daemon import free_port

pytestmark = pytest.mark.model

EVENT_TIMEOUT_S = 60.0
#: Home Assistant's wait for `info` (it tries three times).
HA_INFO_TIMEOUT_S = 1.0
CONNECT_DEADLINE_S = 60.0
#: wyoming.idle_timeout_s of the bad-input daemon: long enough for the steps that hold a
#: connection open, short enough to wait for in the idle test.
IDLE_S = 3.0
SENTENCES = "Turn on the kitchen lights. Then play some music."
STREAMED = ["Hello ", "there. The lights ", "are on now. Good", "bye for today."]


def _config(models_dir: Any, port: int, voice: Any = None, **wyoming: Any) -> dict[str, Any]:
    return {"node": {"models_dir": str(models_dir)},
            "voice": {"enabled": True, "language": "en", **(voice or {})},
            "wyoming": {"enabled": True, "host": "127.0.0.1", "port": port, **wyoming}}


async def _read(client: AsyncTcpClient) -> Event:
    event = await asyncio.wait_for(client.read_event(), EVENT_TIMEOUT_S)
    assert event is not None, "the server closed the connection"
    return event


async def _until(client: AsyncTcpClient, last: str) -> list[Event]:
    events = []
    while True:
        event = await _read(client)
        events.append(event)
        if event.type in (last, "error"):
            return events


@contextlib.asynccontextmanager
async def _connection(port: int) -> AsyncIterator[AsyncTcpClient]:
    """A client that hangs up on leaving and waits until the server has let go.

    The server closes its side only after it has stopped counting the connection
    against ``wyoming.max_connections``, so the next connection is never refused
    for one that is already over.
    """
    async with AsyncTcpClient("127.0.0.1", port) as client:
        yield client
        assert client._writer is not None
        client._writer.write_eof()
        while await asyncio.wait_for(client.read_event(), EVENT_TIMEOUT_S) is not None:
            pass


async def _ask(port: int, *events: Event, last: str) -> list[Event]:
    async with _connection(port) as client:
        for event in events:
            await client.write_event(event)
        return await _until(client, last)


def _audio(events: list[Event]) -> np.ndarray:
    return np.frombuffer(b"".join(e.payload or b"" for e in events if e.type == "audio-chunk"),
                         np.int16)


def _audio_events(pcm: bytes, rate: int, width: int, channels: int) -> list[Event]:
    step = rate * width * channels // 10  # 100 ms chunks
    return [AudioStart(rate=rate, width=width, channels=channels).event(),
            *(AudioChunk(rate=rate, width=width, channels=channels,
                         audio=pcm[i:i + step]).event() for i in range(0, len(pcm), step)),
            AudioStop().event()]


async def _describe_as_home_assistant(port: int) -> Info:
    """Connect as soon as the port is open, then give `info` HA's one second."""
    deadline = time.monotonic() + CONNECT_DEADLINE_S
    while True:
        try:
            async with AsyncTcpClient("127.0.0.1", port) as client:
                await client.write_event(Describe().event())
                event = await asyncio.wait_for(client.read_event(), HA_INFO_TIMEOUT_S)
                assert event is not None and event.type == "info"
                return Info.from_event(event)
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the Wyoming port never opened"
            await asyncio.sleep(0.05)


async def test_describe_while_loading_then_speech_in_and_out_and_a_handled_transcript(
        daemon_factory, models_dir):
    port = free_port()
    d = await daemon_factory(wait_ready=False, llm={"mode": "local", "slots": 1,
                                                    "context": 1024},
                             **_config(models_dir, port))
    info = await _describe_as_home_assistant(port)
    assert not any(line.startswith("READY=1") for line in d.notify.lines()), \
        "info should come while the models still load"
    await d.wait_ready()
    assert [p.name for p in info.asr] == ["hybrid-agent-stt"] and info.asr[0].installed
    assert "en" in info.asr[0].models[0].languages
    assert info.asr[0].supports_transcript_streaming
    voice = info.tts[0].voices[0]
    assert (voice.name, voice.languages) == ("en_US-joe-medium", ["en_US"])
    assert info.tts[0].supports_synthesize_streaming
    assert info.satellite is None

    # synthesize -> one audio block at the voice's rate
    events = await _ask(port, Synthesize(text=SENTENCES).event(), last="audio-stop")
    kinds = [e.type for e in events]
    assert kinds[0] == "audio-start" and kinds[-1] == "audio-stop", kinds
    assert set(kinds[1:-1]) == {"audio-chunk"}
    assert events[0].data["rate"] == 22050 and events[0].data["width"] == 2
    spoken = _audio(events)
    assert len(spoken) / 22050 > 1.5 and rms(spoken) > 0.02

    # ... and back: 32-bit stereo at 22.05 kHz, converted by the server
    wide = np.repeat(spoken.astype(np.int32) << 16, 2).astype("<i4").tobytes()
    events = await _ask(port, Transcribe(language="en-US").event(),
                        *_audio_events(wide, 22050, 4, 2), last="transcript-stop")
    kinds = [e.type for e in events]
    assert kinds[0] == "transcript-start" and kinds[-2:] == ["transcript", "transcript-stop"]
    text = events[-2].data["text"]
    assert "kitchen" in text.lower() and "music" in text.lower(), text
    assert events[-2].data["language"] == "en"
    assert "".join(e.data["text"] for e in events if e.type == "transcript-chunk") == text

    # streaming synthesis, with the whole text repeated inside as Home Assistant does
    events = await _ask(port, SynthesizeStart().event(),
                        *(SynthesizeChunk(text=t).event() for t in STREAMED),
                        Synthesize(text="".join(STREAMED)).event(), SynthesizeStop().event(),
                        last="synthesize-stopped")
    kinds = [e.type for e in events]
    assert kinds[-1] == "synthesize-stopped", kinds
    assert kinds.count("audio-start") == kinds.count("audio-stop") == 3, kinds  # a sentence each
    streamed = _audio(events)
    one_shot = _audio(await _ask(port, Synthesize(text="".join(STREAMED)).event(),
                                 last="audio-stop"))
    assert abs(len(streamed) - len(one_shot)) < 0.25 * len(one_shot)  # spoken once, not twice

    # handle: the agent answers a transcript, in the conversation Home Assistant names
    info = Info.from_event((await _ask(port, Describe().event(), last="info"))[-1])
    assert info.handle and info.handle[0].models[0].name == "hybrid-agent-agent"
    context = {"conversation_id": "01HA-test"}
    events = await _ask(port, Event("transcript", {"text": "What is the capital of France?",
                                                   "context": context}),
                        last="handled")
    assert Handled.is_type(events[-1].type), events[-1]
    answer = Handled.from_event(events[-1])
    assert answer.text and answer.context == context
    print(f"heard {text!r}; the agent answered {answer.text!r}")


async def test_wake_words_streamed_as_a_home_assistant_satellite_streams_them(
        daemon_factory, models_dir):
    port = free_port()
    await daemon_factory(llm={"mode": "off"}, **_config(models_dir, port))
    info = Info.from_event((await _ask(port, Describe().event(), last="info"))[-1])
    assert [p.name for p in info.wake] == ["hybrid-agent-wake"], info.wake
    models = {m.name: m.phrase for m in info.wake[0].models}
    assert models["okay_nabu"] == "Okay Nabu" and "hey_jarvis" in models, models
    # The piper voice at its own 22.05 kHz, steady (the same audio on every run).
    tts = Synthesizer(models_dir / "piper" / "en_US-joe-medium.onnx")
    pause = np.zeros(22050, np.int16)
    wake, other = await asyncio.gather(*(asyncio.to_thread(tts.synthesize_all, text, steady=True)
                                         for text in ("Okay Nabu.", "What time is it now?")))
    said = np.concatenate([pause, wake, pause, pause]).tobytes()
    events = await _ask(port, Detect(names=["okay_nabu"]).event(),
                        *_audio_events(said, 22050, 2, 1), last="detection")
    assert Detection.is_type(events[-1].type), events
    detection = Detection.from_event(events[-1])
    phrase_end_ms = 1000 * (len(pause) + len(wake)) / 22050
    assert detection.name == "okay_nabu"
    assert phrase_end_ms - 500 < (detection.timestamp or 0) < phrase_end_ms + 1500, (
        detection, phrase_end_ms)
    # Other speech wakes nothing: the stream's end says so.
    events = await _ask(port, Detect().event(),
                        *_audio_events(np.concatenate([pause, other, pause]).tobytes(),
                                       22050, 2, 1), last="not-detected")
    assert [e.type for e in events] == ["not-detected"], events
    # An empty chunk and a few bytes (nothing for the resampler to give yet) are no words.
    events = await _ask(port, Detect(names=["okay_nabu"]).event(),
                        AudioStart(rate=22050, width=2, channels=1).event(),
                        AudioChunk(rate=22050, width=2, channels=1, audio=b"").event(),
                        AudioChunk(rate=22050, width=2, channels=1, audio=b"\1\0").event(),
                        AudioStop().event(), last="not-detected")
    assert [e.type for e in events] == ["not-detected"], events
    # A word this box does not have is named in the error; the connection stays usable.
    async with _connection(port) as client:
        await client.write_event(Detect(names=["hey_siri"]).event())
        reply = await _read(client)
        assert reply.data.get("code") == "unknown-wake-word", reply
        assert "hey_siri" in reply.data["text"] and "okay_nabu" in reply.data["text"]
        await client.write_event(Describe().event())
        assert (await _read(client)).type == "info"


async def test_bad_input_gets_an_error_event_and_limits_hold(daemon_factory, models_dir):
    port = free_port()
    await daemon_factory(**_config(models_dir, port, {"max_utterance_s": 2.0},
                                   max_connections=2, idle_timeout_s=IDLE_S))
    errors = [
        (Event("run-pipeline", {}), "unsupported-event"),
        (Synthesize(text="").event(), "bad-text"),
        (Synthesize(text="x" * 4001).event(), "bad-text"),
        (Event("synthesize", {"text": "hi", "voice": {"name": "en_GB-alan"}}), "bad-voice"),
        (SynthesizeChunk(text="hi").event(), "not-streaming"),
        # (after a failed request, its audio is ignored until the next one begins)
        (AudioChunk(rate=0, width=2, channels=1, audio=b"\0\0").event(), "bad-audio-format"),
        (AudioStart(rate=16000, width=5, channels=1).event(), "bad-audio-format"),
        (Transcribe(language="klingon").event(), "bad-language"),
    ]
    async with _connection(port) as client:
        for event, code in errors:  # one connection: each error leaves it usable
            await client.write_event(event)
            reply = await _read(client)
            assert (reply.type, reply.data.get("code")) == ("error", code), (event, reply)
        await client.write_event(Describe().event())
        assert (await _read(client)).type == "info"
    three_s = np.full(16000 * 3, 1000, np.int16).tobytes()
    events = await _ask(port, *_audio_events(three_s, 16000, 2, 1)[:-1], last="error")
    assert events[-1].data["code"] == "audio-too-long"
    assert "voice.max_utterance_s" in events[-1].data["text"]
    # Silence and no audio at all are nothing said, not an error.
    for audio in (_audio_events(bytes(3200), 16000, 2, 1), [AudioStop().event()]):
        events = await _ask(port, Transcribe().event(), *audio, last="transcript")
        assert events[-1].type == "transcript" and events[-1].data["text"] == "", events[-1]
    # The agent with no language model: not handled, with the reason.
    events = await _ask(port, Event("transcript", {"text": "tell me a story"}), last="not-handled")
    assert NotHandled.is_type(events[-1].type)
    assert "language model" in (events[-1].data.get("text") or "")
    await _framing_errors_close_the_connection(port)
    await _connection_limit(port)
    await _idle_connection_is_closed(port)


async def _framing_errors_close_the_connection(port: int) -> None:
    bad = [(b'{"type": "describe", "pad": "' + b"x" * 70000 + b'"}\n', "header-too-large"),
           (json.dumps({"type": "audio-chunk",
                        "payload_length": MAX_PAYLOAD_BYTES + 1}).encode() + b"\n",
            "payload-too-large"),
           (b"hello\n", "bad-event")]
    for wire, code in bad:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wire)
        await writer.drain()
        header = json.loads(await asyncio.wait_for(reader.readline(), EVENT_TIMEOUT_S))
        data = json.loads(await reader.readexactly(header["data_length"]))
        assert (header["type"], data["code"]) == ("error", code), data
        assert await asyncio.wait_for(reader.read(), EVENT_TIMEOUT_S) == b""  # closed
        writer.close()


async def _connection_limit(port: int) -> None:
    async with _connection(port) as first, _connection(port) as second:
        for client in (first, second):  # both admitted and answering
            await client.write_event(Describe().event())
            assert (await _read(client)).type == "info"
        async with AsyncTcpClient("127.0.0.1", port) as third:
            refused = await _read(third)
            assert refused.data["code"] == "too-many-connections"
            assert "wyoming.max_connections" in refused.data["text"]
            assert await asyncio.wait_for(third.read_event(), EVENT_TIMEOUT_S) is None


async def _idle_connection_is_closed(port: int) -> None:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        started = time.monotonic()
        event = await _read(client)
        assert event.data["code"] == "idle" and "wyoming.idle_timeout_s" in event.data["text"]
        assert await asyncio.wait_for(client.read_event(), EVENT_TIMEOUT_S) is None
        assert IDLE_S * 0.9 < time.monotonic() - started < IDLE_S + 10
