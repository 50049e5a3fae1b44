"""Streamed /v1 answers from a peer pass through an edge daemon byte for byte (the short hop).

The peers here are hand-written stand-in cores on loopback (no real core can be
told to fail on cue); the edge is a real daemon with ``llm.mode: remote``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from appliance.llm.chat import ChatRequest
from appliance.llm.client import HOP_HEADER, RemoteClient
from appliance.net.http1 import Pool

HELLO = [{"role": "user", "content": "Say hello."}]
WAIT_S = 60.0


def frame(obj: dict[str, Any] | None) -> bytes:
    return b"data: " + (json.dumps(obj).encode() if obj else b"[DONE]") + b"\n\n"


def content(text: str, finish: str | None = None) -> bytes:
    return frame({"id": "chatcmpl-stand-in", "object": "chat.completion.chunk", "created": 7,
                  "model": "stand-in-model", "choices": [{"index": 0, "delta": {"content": text},
                                                          "finish_reason": finish}]})


FULL_ANSWER = [content("Hel"), content("lo"), content("", "stop") + frame(None)]


class StandInCore:
    """A hand-written stand-in core: answers every chat with the pieces of ``script``.

    ``until_gone`` instead keeps writing a piece until the connection breaks, then
    sets ``gone``; ``hold`` keeps the body open after the script until ``close()``.
    """

    def __init__(self, script: list[bytes], *, until_gone: bool = False,
                 hold: bool = False) -> None:
        self.script = script
        self.until_gone = until_gone
        self.hold = hold
        self._release = asyncio.Event()
        self.bodies: list[bytes] = []
        self.headers: list[Any] = []
        self.gone = asyncio.Event()
        self.url = ""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, shutdown_timeout=0)

    async def start(self) -> StandInCore:
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        self._release.set()
        await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.read())
        assert request.transport is not None
        peer = request.transport.get_extra_info("peername")
        self.headers.append({**request.headers, "X-Peer": f"{peer[0]}:{peer[1]}"})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in self.script:
            await resp.write(piece)
        if self.until_gone:
            try:
                while True:
                    await resp.write(content(" more"))
                    await asyncio.sleep(0.02)  # pacing, as a model's tokens are
            except (ConnectionError, RuntimeError):
                self.gone.set()
                return resp
        if self.hold:
            await self._release.wait()
        with contextlib.suppress(ConnectionError):  # the edge may have hung up by now
            await resp.write_eof()
        return resp


@pytest.fixture
async def cores() -> AsyncIterator[Callable[..., Any]]:
    started: list[StandInCore] = []

    async def make(script: list[bytes], **kw: Any) -> StandInCore:
        core = StandInCore(script, **kw)
        started.append(core)
        return await core.start()

    yield make
    for core in started:
        await core.close()


async def stream_raw(url: str, body: bytes) -> bytes:
    timeout = aiohttp.ClientTimeout(total=WAIT_S)
    async with aiohttp.ClientSession(timeout=timeout) as s, \
            s.post(url + "/v1/chat/completions", data=body,
                   headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"] == "text/event-stream"
        return await r.read()


def events(raw: bytes) -> list[str]:
    return [line[len("data:"):].strip() for line in raw.decode().split("\n")
            if line.startswith("data:")]


async def test_a_streamed_answer_passes_through_byte_for_byte(
        daemon_factory: Any, cores: Any) -> None:
    core = await cores(FULL_ANSWER)
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [core.url]})
    # Fields the edge does not know go to the core as the client wrote them.
    body = json.dumps({"model": "default", "stream": True, "messages": HELLO,
                       "user": "kitchen", "max_tokens": 5}).encode()
    raw = await stream_raw(edge.url, body)
    assert raw == b"".join(FULL_ANSWER)
    assert core.bodies == [body]
    assert core.headers[0][HOP_HEADER] == "1"
    _, status = await edge.get_json("/api/status")
    assert status["components"]["llm_router"]["remote"] == 1


async def test_a_peer_error_event_mid_stream_reaches_the_client_once(
        daemon_factory: Any, cores: Any) -> None:
    failing = frame({"error": {"message": "the core's model crashed", "type": "server_error",
                               "param": None, "code": "llm_error"}})
    core = await cores([content("Hel"), failing])  # then the core ends the stream
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [core.url]})
    body = json.dumps({"stream": True, "messages": HELLO}).encode()
    got = events(await stream_raw(edge.url, body))
    assert "[DONE]" not in got
    errors = [json.loads(e)["error"] for e in got if "error" in json.loads(e)]
    assert [e["message"] for e in errors] == ["the core's model crashed"]
    _, status = await edge.get_json("/api/status")
    assert status["components"]["llm_router"]["interrupted"] == 1


async def test_a_peer_that_stops_before_done_ends_the_relay_with_an_explicit_error(
        daemon_factory: Any, cores: Any) -> None:
    core = await cores([content("Hel"), content("lo")])  # no finish, no [DONE]
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [core.url]})
    got = events(await stream_raw(edge.url, json.dumps({"stream": True,
                                                        "messages": HELLO}).encode()))
    assert "[DONE]" not in got
    objs = [json.loads(e) for e in got]
    assert "".join(o["choices"][0]["delta"]["content"] for o in objs[:-1]) == "Hello"
    assert objs[-1]["error"]["code"] == "stream_interrupted"
    assert "before [DONE]" in objs[-1]["error"]["message"]


async def test_a_peer_whose_first_event_is_an_error_is_failed_over(
        daemon_factory: Any, cores: Any) -> None:
    broken = await cores([frame({"error": {"message": "no slot", "code": "busy"}})])
    good = await cores(FULL_ANSWER)
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [broken.url, good.url]})
    raw = await stream_raw(edge.url, json.dumps({"stream": True, "messages": HELLO}).encode())
    assert raw == b"".join(FULL_ANSWER)
    assert len(broken.bodies) == 1 and len(good.bodies) == 1
    _, status = await edge.get_json("/api/status")
    assert status["components"]["llm_router"]["failovers"] == 1


async def test_a_client_that_goes_away_mid_relay_closes_the_peer_connection(
        daemon_factory: Any, cores: Any) -> None:
    core = await cores([content("Hel")], until_gone=True)
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [core.url]})
    body = json.dumps({"stream": True, "messages": HELLO}).encode()
    async with aiohttp.ClientSession() as s:
        r = await s.post(edge.url + "/v1/chat/completions", data=body,
                         headers={"Content-Type": "application/json"})
        async with asyncio.timeout(WAIT_S):
            first = await r.content.readuntil(b"\n\n")
        assert b"Hel" in first
        r.close()  # the app hangs up mid-answer
    async with asyncio.timeout(WAIT_S):
        await core.gone.wait()  # the core's next write failed: its sequence would be freed


def parsed(raw: bytes) -> list[Any]:
    """Every event of a relayed answer, each of which must be whole JSON (or [DONE])."""
    return [e if e == "[DONE]" else json.loads(e) for e in events(raw)]


async def test_an_answer_cut_inside_an_event_ends_with_a_clean_error_event(
        daemon_factory: Any, cores: Any) -> None:
    half = content("lo")[:-20]  # the core dies in the middle of its second event
    core = await cores([content("Hel"), half])
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [core.url]})
    raw = await stream_raw(edge.url, json.dumps({"stream": True, "messages": HELLO}).encode())
    assert raw.startswith(content("Hel")) and b'"lo"' not in raw
    got = parsed(raw)  # the half event was not passed on, so everything parses
    assert got[-1]["error"]["code"] == "stream_interrupted"
    assert len(got) == 2


async def test_crlf_framed_events_from_another_server_pass_through_whole(
        daemon_factory: Any, cores: Any) -> None:
    crlf = [p.replace(b"\n", b"\r\n") for p in FULL_ANSWER]
    # Split inside the first event's CRLF CRLF: the edge waits for the whole event.
    joined = b"".join(crlf)
    cut = joined.index(b"\r\n\r\n") + 2
    core = await cores([joined[:cut], joined[cut:]])
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [core.url]})
    raw = await stream_raw(edge.url, json.dumps({"stream": True, "messages": HELLO}).encode())
    assert raw == joined


async def test_a_llama_server_style_error_line_first_is_failed_over(
        daemon_factory: Any, cores: Any) -> None:
    broken = await cores([b'error: {"code": 500, "message": "context full"}\n\n'])
    good = await cores(FULL_ANSWER)
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [broken.url, good.url]})
    raw = await stream_raw(edge.url, json.dumps({"stream": True, "messages": HELLO}).encode())
    assert raw == b"".join(FULL_ANSWER)
    _, status = await edge.get_json("/api/status")
    assert status["components"]["llm_router"]["failovers"] == 1


@pytest.mark.parametrize("done", [b"data: [DONE]\n\n", b"data:[DONE]\n\n", b"data: [DONE]"])
async def test_an_answer_is_complete_at_done_even_if_the_body_stays_open(
        daemon_factory: Any, cores: Any, done: bytes) -> None:
    core = await cores([content("Hel"), content("", "stop") + done], hold=not done.endswith(b"]"))
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [core.url]})
    raw = await stream_raw(edge.url, json.dumps({"stream": True, "messages": HELLO}).encode())
    got = parsed(raw)
    assert got[-1] == "[DONE]" and not any("error" in e for e in got[:-1])
    assert raw.endswith(b"\n\n")


async def test_the_parsed_path_keeps_its_connection_for_the_next_request(cores: Any) -> None:
    core = await cores(FULL_ANSWER)
    pool = Pool()
    client = RemoteClient("stand-in", core.url, pool)
    try:
        for _ in range(3):
            chunks = [c async for c in client.stream(ChatRequest(messages=HELLO))]
            assert "".join(c.content for c in chunks) == "Hello"
            assert chunks[-1].finish_reason == "stop"
            assert pool.idle_count() == 1
    finally:
        await pool.close()
    assert len({h["X-Peer"] for h in core.headers}) == 1, "three answers, one connection"
