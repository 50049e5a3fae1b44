"""The hop's HTTP/1.1 client against real servers on loopback: streaming, reuse, bounds, TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.net.http1 import (
    MAX_HEADERS,
    MAX_LINE_BYTES,
    PIECE_BYTES,
    Origin,
    Pool,
    ProtocolError,
)

WAIT_S = 30.0


class AioServer:
    """A real aiohttp server on loopback; counts the TCP connections its requests came on."""

    def __init__(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                 tls: ssl.SSLContext | None = None) -> None:
        self.peers: set[Any] = set()
        self.bodies: list[bytes] = []
        self._handler = handler
        self._tls = tls
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        self.peers.add(request.transport.get_extra_info("peername"))
        self.bodies.append(await request.read())
        return await self._handler(request)

    async def start(self) -> Origin:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._tls)
        await site.start()
        scheme = "https" if self._tls else "http"
        return Origin.parse(f"{scheme}://127.0.0.1:{self._runner.addresses[0][1]}")

    async def close(self) -> None:
        await self._runner.cleanup()


class LoopbackServer:
    """A hand-written server on loopback: ``_serve`` runs for each connection."""

    _server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def start(self) -> Origin:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return Origin.parse(f"http://127.0.0.1:{port}")

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


class RawServer(LoopbackServer):
    """A hand-written misbehaving HTTP server: sends ``answer`` bytes, then closes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.answer)
            await writer.drain()
        finally:
            writer.close()



@pytest.fixture
async def servers() -> AsyncIterator[list[Any]]:
    started: list[Any] = []
    yield started
    for s in started:
        await s.close()


@pytest.fixture
async def pool() -> AsyncIterator[Pool]:
    p = Pool(limit=8)
    yield p
    await p.close()


async def post(pool: Pool, origin: Origin, body: bytes = b"{}") -> Any:
    async with asyncio.timeout(WAIT_S):
        return await pool.post(origin, "/v1/chat/completions", body,
                               {"Content-Type": "application/json"}, connect_timeout_s=WAIT_S)


async def body_of(resp: Any) -> bytes:
    out = b""
    async with asyncio.timeout(WAIT_S):
        while piece := await resp.read_some():
            out += piece
    return out


async def test_a_chunked_answer_arrives_piece_by_piece_before_it_ends(
        servers: list[Any], pool: Pool) -> None:
    read_first = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: one\n\n")
        await read_first.wait()  # the second piece only after the client saw the first
        await resp.write(b"data: two\n\n")
        await resp.write_eof()
        return resp

    server = AioServer(stream)
    servers.append(server)
    origin = await server.start()
    resp = await post(pool, origin, b'{"hello": 1}')
    try:
        assert resp.status == 200
        assert resp.headers["content-type"] == "text/event-stream"
        async with asyncio.timeout(WAIT_S):
            first = await resp.read_some()
        assert first == b"data: one\n\n"
        read_first.set()
        assert await body_of(resp) == b"data: two\n\n"
        assert resp.finished
    finally:
        resp.release()
    assert server.bodies == [b'{"hello": 1}']
    assert pool.idle_count() == 1


async def test_kept_alive_connections_are_reused_and_a_half_read_one_is_not(
        servers: list[Any], pool: Pool) -> None:
    async def fixed(request: web.Request) -> web.Response:
        # The sixth answer is larger than one piece the client reads at a time.
        return web.Response(body=b"x" * (1000 if len(server.bodies) <= 5 else 4 * PIECE_BYTES))

    server = AioServer(fixed)
    servers.append(server)
    origin = await server.start()
    for _ in range(5):
        resp = await post(pool, origin)
        try:
            assert await body_of(resp) == b"x" * 1000
        finally:
            resp.release()
    assert len(server.peers) == 1, "five requests in a row should share one connection"
    assert pool.idle_count() == 1

    resp = await post(pool, origin)
    try:
        assert await resp.read(10) == b"x" * 10
        assert not resp.finished
    finally:
        resp.release()  # the unread rest makes the connection useless: closed, not pooled
    assert pool.idle_count() == 0
    resp = await post(pool, origin)
    resp.release()
    assert len(server.peers) == 2


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
HANG = b"hang"  # ScriptedServer: read on, never answer
CLOSE = b""  # ScriptedServer: close without a byte of answer


class ScriptedServer(LoopbackServer):
    """A hand-written HTTP server that answers request N (on any connection) with
    ``answers[N]``, keeping the connection open; CLOSE and HANG as named above."""

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.connections = 0
        self.requests = 0
        self.hung_up = asyncio.Event()  # a client closed a connection we held open

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                answer = self.answers[self.requests]
                self.requests += 1
                if answer == CLOSE:
                    return
                if answer == HANG:
                    await reader.read()  # until the client closes
                    self.hung_up.set()
                    return
                writer.write(answer)
                if b"\r\n\r\n" not in answer:
                    return  # a partial answer: then hang up
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()



async def run_all(pool: Pool, origin: Origin, n: int) -> list[bytes]:
    bodies = []
    for _ in range(n):
        resp = await post(pool, origin)
        try:
            bodies.append(await body_of(resp))
        finally:
            resp.release()
    return bodies


async def test_a_kept_alive_connection_closed_unanswered_is_replaced_once(
        servers: list[Any], pool: Pool) -> None:
    # The second request meets a connection the server closes without answering (as a
    # keep-alive timeout does): it goes again, once, on a fresh connection.
    server = ScriptedServer([OK, CLOSE, OK])
    servers.append(server)
    assert await run_all(pool, await server.start(), 2) == [b"ok", b"ok"]
    assert (server.connections, server.requests) == (2, 3)


async def test_a_connection_that_breaks_mid_answer_is_not_retried(
        servers: list[Any], pool: Pool) -> None:
    server = ScriptedServer([OK, b"HTTP/1.1 2"])  # half a status line, then gone
    servers.append(server)
    origin = await server.start()
    assert await run_all(pool, origin, 1) == [b"ok"]
    with pytest.raises(ProtocolError, match="status line"):
        await run_all(pool, origin, 1)
    assert (server.connections, server.requests) == (1, 2)  # sent once, not twice


@pytest.mark.parametrize(("answer", "reused"), [
    (OK, True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", False),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", True),
    (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 2\r\n\r\nok",
     False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", True),
])
async def test_reuse_follows_the_version_and_connection_header(
        servers: list[Any], pool: Pool, answer: bytes, reused: bool) -> None:
    server = ScriptedServer([answer, answer])
    servers.append(server)
    assert await run_all(pool, await server.start(), 2) == [b"ok", b"ok"]
    assert server.connections == (1 if reused else 2)


async def test_an_answer_without_length_runs_to_the_connection_end(
        servers: list[Any], pool: Pool) -> None:
    server = RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
    servers.append(server)
    resp = await post(pool, await server.start())
    try:
        assert await body_of(resp) == b"all of it"
    finally:
        resp.release()
    assert pool.idle_count() == 0


@pytest.mark.parametrize(("answer", "complaint"), [
    (b"SMTP ready\r\n\r\n", "status line"),
    (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n", "header lines"),
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MAX_LINE_BYTES + b"\r\n\r\n", "longer than"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", "middle of the body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort", "middle of the body"),
    (b"", "closed the connection"),
])
async def test_a_malformed_answer_is_a_protocol_error_that_says_what(
        servers: list[Any], pool: Pool, answer: bytes, complaint: str) -> None:
    server = RawServer(answer)
    servers.append(server)
    origin = await server.start()
    with pytest.raises(ProtocolError, match=complaint):
        resp = await post(pool, origin)
        try:
            await body_of(resp)
        finally:
            resp.release()
    assert pool.idle_count() == 0


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent(
        servers: list[Any], pool: Pool) -> None:
    server = RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    servers.append(server)
    origin = await server.start()
    with pytest.raises(ValueError, match="line break"):
        await pool.post(origin, "/", b"", {"X-Evil": "a\r\nX-Injected: 1"},
                        connect_timeout_s=WAIT_S)
    assert server.connections == 0


async def test_an_unreachable_peer_is_an_os_error_and_frees_its_slot() -> None:
    small = Pool(limit=1)
    closed = RawServer(b"")
    origin = await closed.start()
    await closed.close()  # nothing listens on that port now
    try:
        for _ in range(3):  # with limit 1, a leaked slot would hang the second try
            with pytest.raises(OSError):
                await post(small, origin)
    finally:
        await small.close()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=hop-test", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_https_peers_are_verified_against_the_trusted_certificates(
        servers: list[Any], self_signed: tuple[Path, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = self_signed
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def fixed(request: web.Request) -> web.Response:
        return web.Response(body=b"secret")

    server = AioServer(fixed, tls)
    servers.append(server)
    origin = await server.start()

    untrusting = Pool()
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await post(untrusting, origin)
    finally:
        await untrusting.close()

    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # as an admin's own CA would be added
    trusting = Pool()
    try:
        resp = await post(trusting, origin)
        try:
            assert await body_of(resp) == b"secret"
        finally:
            resp.release()
    finally:
        await trusting.close()
    assert server.bodies == [b"{}"]


async def test_a_request_cancelled_on_a_kept_alive_connection_closes_it_and_frees_its_slot(
        servers: list[Any]) -> None:
    server = ScriptedServer([OK, HANG, OK])
    servers.append(server)
    origin = await server.start()
    small = Pool(limit=1)
    try:
        assert await run_all(small, origin, 1) == [b"ok"]
        assert small.idle_count() == 1
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):  # the caller gives up: the limit under test
                await small.post(origin, "/", b"{}", {},
                                 connect_timeout_s=WAIT_S)
        async with asyncio.timeout(WAIT_S):
            await server.hung_up.wait()  # the half-used connection was closed, not leaked
        assert small.idle_count() == 0
        # With limit 1, a leaked slot would hang here.
        assert await run_all(small, origin, 1) == [b"ok"]
    finally:
        await small.close()
    assert server.connections == 2
