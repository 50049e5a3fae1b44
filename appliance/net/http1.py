"""A small HTTP/1.1 client for one job: POST a chat to a peer and read the answer as it streams.

The hop from an edge to a core has a budget of 2 ms at p50, and aiohttp's
client alone spent about 0.45 ms of it per request on a 2-core box (URL and
header objects, the cookie jar, tracing, its response parser). This client
writes each request in one send, reads the status line and the headers with
bounds, and decodes a chunked or a Content-Length body piece by piece as it
arrives. Connections are kept alive and reused per origin.

Between nodes, ``https`` means the cluster's mutual TLS (appliance.security
.nodetls) when the pool is given a ``node_tls`` source: each connection is
verified as the expected node (or learns which node it reached), and the
request is signed for that node once the connection is chosen (``sign``).

Everything a peer sends is bounded: the status line and each header line
(:data:`MAX_LINE_BYTES`), the number of headers, the size of one chunk-size
line; body pieces are at most :data:`PIECE_BYTES`. A malformed answer raises
:class:`ProtocolError`; a connection that breaks raises ``OSError``. Timeouts
are the caller's (``asyncio.timeout`` around each await).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from appliance.errors import ApplianceError

MAX_LINE_BYTES = 16 * 1024
MAX_HEADERS = 100
PIECE_BYTES = 64 * 1024
# Idle connections: how many per origin, and for how long (aiohttp's server keeps
# them 75 s, so the peer never closes one first while it sits here).
IDLE_PER_ORIGIN = 16
IDLE_FOR_S = 30.0
MAX_INTERIM = 10
_DECIMAL = re.compile(r"[0-9]{1,18}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_STATUS = re.compile(rb"[1-5][0-9][0-9]")
NOT_SENT = "no connection could be made: the request was not sent"


Sign = Callable[[str | None], Mapping[str, str]]
"""Headers that authenticate a request, given the node id the connection reached (None on
plain HTTP)."""
NodeTLSSource = Callable[[], Any]
"""Returns the NodeTLS to use for https origins (None: the system's trusted certificates)."""


def never_sent(exc: BaseException) -> bool:
    """Whether ``exc`` came before the request left: no connection could be made (refused,
    unreachable, timed out, TLS refused), so asking another peer repeats nothing."""
    return NOT_SENT in getattr(exc, "__notes__", ())


class ProtocolError(ApplianceError, ValueError):
    """The peer's answer is not the HTTP/1.1 this client reads."""


class _ClosedUnanswered(ApplianceError):
    """The connection closed before a single byte of an answer came back."""


@dataclass(frozen=True)
class Origin:
    """Where requests go: scheme, host and port, and the Host header for them."""

    scheme: str
    host: str
    port: int
    netloc: str

    @classmethod
    def parse(cls, url: str) -> Origin:
        """The origin of an ``http(s)://host[:port]`` URL; ValueError when it is not one."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL with a host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        # The Host header: the URL's host and port, never its user:password@.
        netloc = parts.netloc.rsplit("@", 1)[-1]
        # An IPv6 zone ("fe80::1%25eth0" in a URL) goes to the socket unquoted.
        return cls(parts.scheme, unquote(parts.hostname), port, netloc)


class Response:
    """The status, the headers (lower-case names), and the body read piece by piece."""

    def __init__(self, conn: _Conn, version: bytes, status: int,
                 headers: dict[str, str]) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        #: The node that answered (verified by TLS), or None over plain HTTP.
        self.peer_id = conn.peer_id
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        self._left: int | None = None  # bytes left in the body (or in this chunk)
        if not self._chunked and length is not None:
            if not _DECIMAL.fullmatch(length):
                raise ProtocolError(f"a Content-Length of {length[:40]!r}")
            self._left = int(length)
        elif self._chunked:
            self._left = 0
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        # HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 only when asked.
        keep = "close" not in tokens and (version == b"HTTP/1.1" or "keep-alive" in tokens)
        self._reusable = keep and (self._chunked or self._left is not None)
        self.finished = self._left == 0 and not self._chunked
        self._released = False

    async def read_some(self) -> bytes:
        """The next piece of the body as soon as any of it arrives; ``b""`` at its end."""
        if self.finished:
            return b""
        reader = self._conn.reader
        if self._chunked and self._left == 0:
            self._left = await self._chunk_size()
            if self._left == 0:
                await self._trailers()
                self.finished = True
                return b""
        want = PIECE_BYTES if self._left is None else min(self._left, PIECE_BYTES)
        data = await reader.read(want)
        if not data:
            if self._left is None:  # the body ran to the connection's end
                self.finished = True
                return b""
            raise ProtocolError("the peer closed the connection in the middle of the body")
        if self._left is not None:
            self._left -= len(data)
            if self._chunked and self._left == 0:
                if (await self._line()).strip():  # the CRLF after a chunk's data
                    raise ProtocolError("a chunk longer than its size")
            elif not self._chunked and self._left == 0:
                self.finished = True
        return data

    async def read(self, limit: int) -> bytes:
        """At most ``limit`` bytes of the body (an error message, say); the rest is dropped."""
        out = bytearray()
        while len(out) < limit:
            piece = await self.read_some()
            if not piece:
                break
            out += piece
        return bytes(out[:limit])

    def release(self) -> None:
        """Give the connection back for reuse when the whole body was read, else close it.

        Only the first call counts: the connection may serve another request after it.
        """
        if not self._released:
            self._released = True
            self._conn.release(self.finished and self._reusable)

    async def _chunk_size(self) -> int:
        line = await self._line()
        size = line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size):
            raise ProtocolError(f"a chunk size of {size[:40]!r}")
        return int(size, 16)

    async def _trailers(self) -> None:
        for _ in range(MAX_HEADERS + 1):
            if not (await self._line()).strip():
                return
        raise ProtocolError(f"more than {MAX_HEADERS} trailer lines")

    async def _line(self) -> bytes:
        return await _read_line(self._conn.reader)


class Pool:
    """Kept-alive connections to peers; at most ``limit`` requests in flight at once."""

    def __init__(self, limit: int = 64, node_tls: NodeTLSSource | None = None) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._idle: dict[tuple[Origin, str | None], list[tuple[float, _Conn]]] = {}
        self._tls: ssl.SSLContext | None = None
        self._node_tls = node_tls
        self._closed = False

    async def post(self, origin: Origin, path: str, body: bytes,
                   headers: Mapping[str, str], *, connect_timeout_s: float,
                   peer: str | None = None, sign: Sign | None = None) -> Response:
        """POST (see :meth:`request`)."""
        return await self.request("POST", origin, path, body, headers,
                                  connect_timeout_s=connect_timeout_s, peer=peer, sign=sign)

    async def request(self, method: str, origin: Origin, path: str, body: bytes | None,
                      headers: Mapping[str, str], *, connect_timeout_s: float,
                      peer: str | None = None, sign: Sign | None = None) -> Response:
        """Send the request and read the status and headers; the body is the caller's to read.

        ``peer`` is the node expected at ``origin`` (None: any node of the cluster, or
        whoever answers plain HTTP); ``sign`` adds headers once the connection (and so the
        node) is known. The caller must ``release()`` the response (a ``finally`` will do).
        A kept-alive connection that turns out closed is replaced by a fresh one, once.
        """
        if self._closed:
            raise OSError("the connection pool is closed")
        head = [f"{method} {path} HTTP/1.1", f"Host: {origin.netloc}"]
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        for name, value in headers.items():
            _check_header(name, value)
            head.append(f"{name}: {value}")

        def message(conn: _Conn) -> bytes:
            lines = head
            if sign is not None:
                lines = [*head]
                for name, value in sign(conn.peer_id).items():
                    _check_header(name, value)
                    lines.append(f"{name}: {value}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")

        await self._slots.acquire()
        try:
            conn = self._take_idle(origin, peer)
            if conn is not None:
                try:
                    return await self._exchange(conn, message(conn))
                except _ClosedUnanswered:
                    # The peer closed the kept-alive connection as the request went out
                    # (it never answered a byte): the one case to send it again, fresh.
                    conn.close()
                except BaseException:
                    conn.close()
                    raise
            try:
                conn = await self._connect(origin, connect_timeout_s, peer)
            except Exception as exc:
                exc.add_note(NOT_SENT)  # the caller may ask another peer (never_sent)
                raise
            try:
                return await self._exchange(conn, message(conn))
            except _ClosedUnanswered:
                conn.close()
                raise ProtocolError("the peer closed the connection without answering") from None
            except BaseException:
                conn.close()
                raise
        except BaseException:
            self._slots.release()
            raise

    async def close(self) -> None:
        """Close every idle connection; later requests fail."""
        self._closed = True
        for conns in self._idle.values():
            for _, conn in conns:
                conn.close()
        self._idle.clear()

    def idle_count(self) -> int:
        """How many kept-alive connections wait for reuse."""
        return sum(len(c) for c in self._idle.values())

    # ------------------------------------------------------------ helpers

    async def _exchange(self, conn: _Conn, message: bytes) -> Response:
        try:
            conn.writer.write(message)
            first = await conn.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ProtocolError("the peer closed the connection in its status line") from None
            raise _ClosedUnanswered() from None
        except (ConnectionResetError, BrokenPipeError):
            raise _ClosedUnanswered() from None
        except asyncio.LimitOverrunError:
            raise ProtocolError(f"a line longer than {MAX_LINE_BYTES} bytes") from None
        for _ in range(MAX_INTERIM + 1):
            version, status = _status(first)
            headers = await _headers(conn.reader)
            if not 100 <= status < 200 or status == 101:
                break
            first = await _read_line(conn.reader)  # an interim answer (100 Continue): skip it
        else:
            raise ProtocolError(f"more than {MAX_INTERIM} interim answers")
        conn.pool = self
        return Response(conn, version, status, headers)

    async def _connect(self, origin: Origin, timeout_s: float, peer: str | None) -> _Conn:
        node_tls = self._node_tls() if self._node_tls is not None else None
        if origin.scheme == "https" and node_tls is not None:
            reader, writer, verified = await node_tls.open_connection(
                origin.host, origin.port, peer, timeout_s=timeout_s, limit=MAX_LINE_BYTES)
            return _Conn(origin, reader, writer, peer, verified.node_id)
        tls = None
        if origin.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(
                origin.host, origin.port, ssl=tls, limit=MAX_LINE_BYTES,
                server_hostname=origin.host.split("%", 1)[0] if tls else None)
        return _Conn(origin, reader, writer, peer, None)

    def _take_idle(self, origin: Origin, peer: str | None) -> _Conn | None:
        conns = self._idle.get((origin, peer))
        now = time.monotonic()
        node_tls = self._node_tls() if self._node_tls is not None else None
        while conns:
            since, conn = conns.pop()
            revoked = node_tls is not None and conn.peer_id is not None \
                and node_tls.revoked(conn.peer_id)
            if now - since < IDLE_FOR_S and not conn.writer.is_closing() \
                    and not conn.reader.at_eof() and not revoked:
                return conn
            conn.close()
        return None

    def _give_back(self, conn: _Conn, reusable: bool) -> None:
        self._slots.release()
        now = time.monotonic()
        self._drop_expired(now)
        if not reusable or self._closed or conn.writer.is_closing():
            conn.close()
            return
        conns = self._idle.setdefault((conn.origin, conn.expected), [])
        conns.append((now, conn))
        while len(conns) > IDLE_PER_ORIGIN:
            conns.pop(0)[1].close()

    def _drop_expired(self, now: float) -> None:
        """Close idle connections past IDLE_FOR_S, to every origin (a peer may be gone)."""
        for origin in list(self._idle):
            conns = self._idle[origin]
            while conns and now - conns[0][0] >= IDLE_FOR_S:
                conns.pop(0)[1].close()
            if not conns:
                del self._idle[origin]


class _Conn:
    def __init__(self, origin: Origin, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, expected: str | None,
                 peer_id: str | None) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer
        self.expected = expected
        self.peer_id = peer_id
        self.pool: Pool | None = None

    def release(self, reusable: bool) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool._give_back(self, reusable)

    def close(self) -> None:
        self.writer.transport.abort()


def _check_header(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
        raise ValueError(f"header {name[:40]!r} has a line break")


def _status(line: bytes) -> tuple[bytes, int]:
    parts = line.split(None, 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") \
            or not _STATUS.fullmatch(parts[1]):
        raise ProtocolError(f"a status line of {line[:80]!r}")
    return parts[0], int(parts[1])


async def _headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        line = await _read_line(reader)
        if not line.strip():
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProtocolError(f"a header line of {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    raise ProtocolError(f"more than {MAX_HEADERS} header lines")


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise ProtocolError(f"a line longer than {MAX_LINE_BYTES} bytes") from None
    except asyncio.IncompleteReadError:
        raise ProtocolError("the peer closed the connection") from None

