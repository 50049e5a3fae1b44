"""The one HTTP port: plain HTTP, HTTPS for browsers and mutual TLS for nodes, told apart per
connection.

Each accepted connection's first bytes are peeked at (never read, so nothing
is lost): a TLS ClientHello asking for a name under ``node.hybrid-agent`` is
a node of the cluster and gets the node context (client certificates required,
appliance.security.nodetls); any other ClientHello gets the box's HTTPS
certificate (appliance.security.webcert); anything else is plain HTTP, which
the app answers only on loopback and redirects to HTTPS from the LAN
(appliance.web.callers). Then the connection is handed to aiohttp's protocol
(or whatever ``protocol_factory`` wraps it).

Bounded: a connection waits for its first bytes at most ``first_bytes_s``
(``http.idle_timeout_s``), its TLS handshake :data:`HANDSHAKE_S`; the
connection gate (appliance.web.connections) counts it from its accept on and
refuses one over its limits with a 503 before a byte is read (without a gate,
at most :data:`MAX_UNSORTED` wait).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from appliance.security.certs import NODE_DOMAIN
from appliance.web import clienthello
from appliance.web.connections import refusal

log = logging.getLogger(__name__)

FIRST_BYTES_S = 10.0
HANDSHAKE_S = 10.0
MAX_UNSORTED = 1024
#: Bytes peeked at: enough for any ClientHello that fits one record.
PEEK_BYTES = 16 * 1024 + 5
#: How often an incomplete ClientHello is peeked at again.
REPEEK_S = 0.005
BACKLOG = 512
#: A refused connection is read from (and the reads dropped) this long before it is closed.
LINGER_S = 2.0
MAX_LINGERING = 256

ContextSource = Callable[[], ssl.SSLContext | None]


class _Closer:
    """What BaseSite.stop() closes: the accept tasks and the listening sockets."""

    def __init__(self, site: FrontDoor) -> None:
        self._site = site

    def close(self) -> None:
        self._site.close()


class FrontDoor(web.BaseSite):
    """A site on ``host:port`` (or an inherited socket) that sorts connections by protocol."""

    __slots__ = ("_accepting", "_first_bytes_s", "_gate", "_host", "_lingering", "_node_tls",
                 "_pending", "_port", "_protocol", "_socks", "_web_tls", "refused")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *,
                 web_tls: ContextSource, node_tls: ContextSource,
                 protocol_factory: Callable[[], Any] | None = None,
                 sock: socket.socket | None = None, gate: Any = None,
                 first_bytes_s: float = FIRST_BYTES_S) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._host = host
        self._port = port
        self._web_tls = web_tls
        self._node_tls = node_tls
        #: appliance.web.connections.ConnectionGate: counts a connection from its accept on
        #: (while it is sorted too) and refuses one over its limits before a byte is read.
        self._gate = gate
        self._first_bytes_s = first_bytes_s
        factory = protocol_factory or runner.server
        assert factory is not None
        self._protocol: Callable[[], Any] = factory
        self._socks: list[socket.socket] = [sock] if sock is not None else []
        self._accepting: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._lingering: set[socket.socket] = set()
        self.refused = 0

    @property
    def name(self) -> str:
        if self._socks:
            host, port = self._socks[0].getsockname()[:2]
            return f"http(s)://{host}:{port}"
        return f"http(s)://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        return int(self._socks[0].getsockname()[1]) if self._socks else self._port

    async def start(self) -> None:
        await super().start()
        if not self._socks:
            family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
            self._socks = [socket.create_server((self._host, self._port), family=family,
                                                backlog=self._backlog)]
        loop = asyncio.get_running_loop()
        for sock in self._socks:
            sock.setblocking(False)
            self._accepting.append(loop.create_task(self._accept(sock), name="http-accept"))
        self._server = _Closer(self)  # type: ignore[assignment]

    def close(self) -> None:
        for task in (*self._accepting, *self._pending):
            task.cancel()
        for conn in list(self._lingering):
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(conn.fileno())
            conn.close()
        self._lingering.clear()
        for sock in self._socks:
            sock.close()

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _addr = await loop.sock_accept(sock)
            except OSError as exc:  # EMFILE and friends: back off instead of spinning
                log.warning("accepting a connection failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            host = str(_addr[0]) if isinstance(_addr, tuple) and _addr else ""
            if self._gate is not None:
                why = self._gate.admit(host)
                if why:
                    self.refused += 1
                    self._gate.refuse(host, why)
                    self._refuse(conn, refusal(f"too many connections: {why}; retry later"))
                    continue
            if len(self._pending) >= MAX_UNSORTED:
                self.refused += 1
                conn.close()
                continue
            if self._gate is not None:
                self._gate.opened(host)
            task = loop.create_task(self._sort(conn, host), name="http-sort")
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _refuse(self, conn: socket.socket, answer: bytes) -> None:
        """Send ``answer`` and close gently: a request the client sends meanwhile is read and
        dropped for a moment, so the answer is not lost to a reset (a lingering close)."""
        loop = asyncio.get_running_loop()
        try:
            conn.setblocking(False)
            conn.send(answer)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            conn.close()
            return
        if len(self._lingering) >= MAX_LINGERING:
            conn.close()
            return
        fd = conn.fileno()
        self._lingering.add(conn)

        def done() -> None:
            if conn in self._lingering:
                self._lingering.discard(conn)
                loop.remove_reader(fd)
                conn.close()

        def drain() -> None:
            try:
                if not conn.recv(65536):
                    done()
            except BlockingIOError:
                pass
            except OSError:
                done()

        loop.add_reader(fd, drain)
        loop.call_later(LINGER_S, done)

    async def _sort(self, conn: socket.socket, host: str) -> None:
        counted = [self._gate is not None]

        def hand_over() -> None:  # its protocol counts it from its connection_made on
            if counted[0]:
                counted[0] = False
                self._gate.closed(host)

        try:
            await self._sort_one(conn, hand_over)
        finally:
            hand_over()

    async def _sort_one(self, conn: socket.socket, hand_over: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        try:
            first = await self._first_bytes(conn)
            context = None
            if first and first[0] == clienthello.HANDSHAKE:
                name = clienthello.server_name(first) or ""
                node = name == NODE_DOMAIN or name.endswith("." + NODE_DOMAIN)
                context = self._node_tls() if node else self._web_tls()
                if context is None:  # no cluster key (node), or no certificate (web)
                    conn.close()
                    return
            if not first:
                conn.close()
                return
            hand_over()
            await loop.connect_accepted_socket(
                self._protocol, conn, ssl=context,
                ssl_handshake_timeout=HANDSHAKE_S if context is not None else None)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log.debug("a connection ended before its first request: %s", exc)
            with contextlib.suppress(OSError):
                conn.close()

    async def _first_bytes(self, conn: socket.socket) -> bytes:
        """The first bytes without consuming them: the whole first TLS record when it is
        one, else whatever arrived; ``b""`` at EOF or after FIRST_BYTES_S."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._first_bytes_s):
                await _readable(loop, conn)
                while True:
                    data = conn.recv(PEEK_BYTES, socket.MSG_PEEK)
                    want = clienthello.record_length(data)
                    if not data or want is None or len(data) >= min(want, PEEK_BYTES):
                        return data
                    await asyncio.sleep(REPEEK_S)  # the rest of the ClientHello is on its way
        except TimeoutError:
            return b""
        except BlockingIOError:
            return b""


async def _readable(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
