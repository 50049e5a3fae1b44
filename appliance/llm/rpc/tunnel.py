"""The RPC link: ggml RPC between boxes only inside mutually authenticated TLS.

Worker side, :class:`LinkServer`: a TCP listener on the LAN that does the TLS
handshake itself (the trust provider's contexts, appliance.llm.rpc.link), then
reads one preamble line and either answers a probe (free memory, whether the RPC
server runs) or joins the connection to ggml's RPC server on 127.0.0.1. Core
side, :class:`LocalEnd`: a listener on 127.0.0.1 for this box's own RPC client
(the model host child) that carries each of its connections into a new TLS
connection to one worker. ggml itself only ever sees loopback sockets.

The preamble, after the handshake: the client sends ``HA-RPC/1 probe <id>
<name>`` or ``HA-RPC/1 session <id> <name>`` (the core's node id and name) and a
newline; the server answers ``OK <json>`` or ``NO <reason>`` and a newline; after
``OK`` to a session, raw ggml RPC bytes flow both ways until either side closes.
ggml's server serves one client at a time, so a worker belongs to one core at a
time: another core's session waits briefly (:data:`SESSION_WAIT_S`, for the last
one's close to arrive) and is then answered ``NO busy``; a probe says ``busy``.
(The id is a claim among cluster members, for coordination, not a credential.)
Every wait on a peer before a session is bounded (:data:`HANDSHAKE_S`), so is
the line (:data:`MAX_LINE_BYTES`) and so are the connections a stranger can hold
open (``max_connections``). A live session has no idle limit (a model can sit
unused for hours); TCP keepalive finds a peer that vanished.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.errors import ApplianceError
from appliance.llm.rpc import sockets
from appliance.llm.rpc.link import LinkRefused, LinkTrust
from appliance.net.text import clean
from appliance.tasks import cancel_and_wait

log = logging.getLogger(__name__)

PROTOCOL = "HA-RPC/1"
HANDSHAKE_S = 10.0
SESSION_WAIT_S = 3.0
MAX_NAME_CHARS = 64
MAX_LINE_BYTES = 1024
PUMP_CHUNK = 256 * 1024
MAX_CONNECTIONS = 8


class LinkError(ApplianceError):
    """The link could not be opened or used (the message says why, in words)."""


@dataclass
class Traffic:
    """What crossed one end of the link (ggml RPC payload bytes, without TLS framing)."""

    sessions: int = 0
    active: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    refused: int = 0
    last_refusal: str = ""
    last_end: str = ""
    """How the last session ended, in words."""
    ended_by_peer_at: float = 0.0
    """time.monotonic() when the far side last closed a session this side still used."""

    def snapshot(self) -> dict[str, Any]:
        return {"sessions": self.sessions, "active": self.active,
                "bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "refused": self.refused, "last_refusal": self.last_refusal,
                "last_end": self.last_end}


class _Listener:
    """A TCP listener whose connection handlers are tasks ``stop`` cancels and waits for."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _listen(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._accept, host, port,
                                                  reuse_address=True)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await cancel_and_wait(list(self._tasks))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        finally:
            self._tasks.discard(task)
            sockets.close(writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


# ---------------------------------------------------------------- worker side


class LinkServer(_Listener):
    """The worker's TLS listener in front of ggml's RPC server on loopback."""

    def __init__(self, trust: LinkTrust, host: str, port: int, *,
                 target: Callable[[], int | None], status: Callable[[], dict[str, Any]],
                 max_connections: int = MAX_CONNECTIONS) -> None:
        super().__init__()
        self._trust = trust
        self.host, self.port = host, port
        self._target = target  # the RPC server's loopback port, None while it is down
        self._status = status  # what a probe answers
        self._max = max_connections
        self._open = 0
        self.traffic = Traffic()
        self.owner = ""
        """The node id of the core whose sessions run now ("" when none)."""
        self.owner_name = ""
        self._users = 0
        self._free = asyncio.Event()
        self._free.set()

    async def start(self) -> None:
        self.port = await self._listen(self.host, self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addr = sockets.peer_name(writer)
        if self._open >= self._max:
            self._refuse(addr, f"more than {self._max} connections at once")
            writer.transport.abort()
            return
        self._open += 1
        try:
            sockets.keepalive(writer)
            try:
                async with asyncio.timeout(HANDSHAKE_S):
                    # Asked per connection: a revocation rebuilds the provider's context.
                    await writer.start_tls(self._trust.server_context())
                    tls = writer.get_extra_info("ssl_object")
                    who = self._trust.peer(tls)
                    verb = await _read_line(reader)
                proto, verb, core, name = [*verb.split(" ", 3), "", "", "", ""][:4]
                core, name = clean(core, MAX_NAME_CHARS), clean(name, MAX_NAME_CHARS)
                if core:
                    # The core a request names is the one its certificate proves.
                    self._trust.peer(tls, core)
            except (OSError, ssl.SSLError, LinkRefused, TimeoutError, LinkError) as exc:
                self._refuse(addr, _describe(exc))
                writer.transport.abort()
                return
            if proto != PROTOCOL or verb not in ("probe", "session") or not core:
                self._refuse(addr, f"unknown request {' '.join((proto, verb))[:40]!r}")
                await _send_line(writer, "NO unknown request")
            elif verb == "probe":
                busy = self.owner not in ("", core)
                await _send_line(writer, "OK " + json.dumps({**self._status(), "busy": busy}))
            else:
                await self._session(addr, f"{name or core} ({who})", core, name, reader,
                                    writer)
        finally:
            self._open -= 1

    async def _session(self, addr: str, who: str, core: str, name: str,
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not await self._claim(core):
            log.info("rpc link: %s asked while %s uses this worker: busy", who,
                     self.owner_name or self.owner)
            await _send_line(writer, "NO busy: another core uses this worker")
            return
        self.owner, self.owner_name = core, name
        self._users += 1
        try:
            port = self._target()
            if port is None:
                await _send_line(writer, "NO the RPC server is not running")
                return
            try:
                async with asyncio.timeout(HANDSHAKE_S):
                    local_r, local_w = await asyncio.open_connection("127.0.0.1", port)
            except (OSError, TimeoutError) as exc:
                await _send_line(writer, f"NO the RPC server does not answer: {_describe(exc)}")
                return
            await _send_line(writer, "OK {}")
            log.info("rpc link: session from %s, %s", addr, who)
            t = self.traffic
            t.sessions += 1
            t.active += 1
            try:
                # far = the core over TLS, near = ggml's server on loopback.
                end = await _pump(reader, writer, local_r, local_w, t, far_is_client=True)
            finally:
                t.active -= 1
                sockets.close(local_w)
            t.last_end = f"{addr}: {end}"
            log.info("rpc link: session from %s ended: %s", addr, end)
        finally:
            self._users -= 1
            if self._users == 0:
                self.owner = self.owner_name = ""
                self._free.set()

    async def _claim(self, core: str) -> bool:
        """Whether ``core`` may have a session now (after waiting for another's to end)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SESSION_WAIT_S):
                while self.owner not in ("", core):
                    self._free.clear()
                    await self._free.wait()
        return self.owner in ("", core)

    def _refuse(self, addr: str, why: str) -> None:
        self.traffic.refused += 1
        self.traffic.last_refusal = f"{addr}: {why}"[:300]
        log.warning("rpc link: refused %s: %s", addr, why)


# ---------------------------------------------------------------- core side


class LocalEnd(_Listener):
    """A loopback listener whose every connection is carried over TLS to one worker.

    Only processes of this box's own user may connect (checked in /proc/net/tcp):
    a loopback port is open to every local user, and the RPC stream it carries
    reaches another box's memory.
    """

    def __init__(self, trust: LinkTrust, name: str, host: str, port: int, *,
                 client: tuple[str, str], peer_id: str | None = None,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        super().__init__()
        self._trust = trust
        self._peer_id = peer_id  # the worker's node id: its certificate must name it
        self._client = " ".join(client)  # this core's node id and name, for the worker
        self.name = name  # the worker's node name
        self.host, self.port = host, port  # the worker's link address
        self.local_port = 0
        self._max = max_connections
        self.traffic = Traffic()

    @property
    def endpoint(self) -> str:
        """What ggml's RPC client connects to."""
        return f"127.0.0.1:{self.local_port}"

    async def start(self) -> None:
        self.local_port = await self._listen("127.0.0.1", 0)

    async def probe(self) -> dict[str, Any]:
        """Ask the worker over the link how it is (LinkError when it cannot be reached)."""
        return await probe(self._trust, self.host, self.port, self._client, self._peer_id)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        t = self.traffic
        peer = writer.get_extra_info("peername")
        owner = sockets.socket_owner(peer, ("127.0.0.1", self.local_port))
        if owner != os.geteuid() or len(self._tasks) > self._max:
            t.refused += 1
            t.last_refusal = (f"uid {owner} is not this service's" if owner != os.geteuid()
                              else f"more than {self._max} connections at once")
            log.warning("rpc link to %s: refused a local connection: %s", self.name,
                        t.last_refusal)
            return
        try:
            far_r, far_w, _ = await open_link(self._trust, self.host, self.port,
                                              f"session {self._client}", self._peer_id)
        except LinkError as exc:
            t.last_end = f"could not open the link: {exc}"
            t.ended_by_peer_at = time.monotonic()
            log.warning("rpc link to %s: %s", self.name, t.last_end)
            return
        t.sessions += 1
        t.active += 1
        try:
            t.last_end = await _pump(far_r, far_w, reader, writer, t, far_is_client=False)
        finally:
            t.active -= 1
            sockets.close(far_w)


async def open_link(trust: LinkTrust, host: str, port: int, verb: str,
                    peer_id: str | None = None
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """Connect, handshake (the provider's context, asked per connection: a revocation
    rebuilds it), check the peer (node ``peer_id``; None: any node), send ``verb``; the
    streams and what followed OK."""
    try:
        async with asyncio.timeout(HANDSHAKE_S):
            reader, writer = await asyncio.open_connection(host, port)
            sockets.keepalive(writer)
            try:
                await writer.start_tls(trust.client_context(peer_id),
                                       server_hostname=trust.server_hostname(peer_id))
                trust.peer(writer.get_extra_info("ssl_object"), peer_id)
                await _send_line(writer, f"{PROTOCOL} {verb}")
                answer = await _read_line(reader)
            except BaseException:
                writer.transport.abort()
                raise
    except (OSError, ssl.SSLError, TimeoutError, LinkRefused) as exc:
        raise LinkError(f"{host}:{port}: {_describe(exc)}") from None
    if answer == "OK" or answer.startswith("OK "):
        return reader, writer, answer[3:]
    sockets.close(writer)
    reason = answer[3:] if answer.startswith("NO ") else f"unexpected answer {answer[:60]!r}"
    raise LinkError(f"{host}:{port}: {reason}")


async def probe(trust: LinkTrust, host: str, port: int, client: str,
                peer_id: str | None = None) -> dict[str, Any]:
    """The worker's answer to a probe: its free memory, whether its RPC server runs,
    whether another core than ``client`` ("<id> <name>") uses it."""
    _reader, writer, text = await open_link(trust, host, port, f"probe {client}", peer_id)
    sockets.close(writer)
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise LinkError(f"{host}:{port}: the probe's answer is not a JSON object")
    return answer


# ---------------------------------------------------------------- internals


async def _pump(far_r: asyncio.StreamReader, far_w: asyncio.StreamWriter,
                near_r: asyncio.StreamReader, near_w: asyncio.StreamWriter, t: Traffic, *,
                far_is_client: bool) -> str:
    """Copy both ways until one side closes; how it ended, in words."""
    ended: list[str] = []

    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, outbound: bool,
                   who: str) -> None:
        try:
            while True:
                data = await src.read(PUMP_CHUNK)
                if not data:
                    ended.append(f"{who} closed")
                    return
                if outbound:
                    t.bytes_sent += len(data)
                else:
                    t.bytes_received += len(data)
                dst.write(data)
                await dst.drain()
        except (OSError, ssl.SSLError) as exc:
            ended.append(f"{who}: {_describe(exc)}")

    far_name = "the core" if far_is_client else "the worker"
    # bytes_sent: what this end sent over the link (towards the far side).
    to_far = asyncio.ensure_future(copy(near_r, far_w, True, "the local side"))
    from_far = asyncio.ensure_future(copy(far_r, near_w, False, far_name))
    try:
        done, _ = await asyncio.wait({to_far, from_far}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await cancel_and_wait([to_far, from_far])
    if from_far in done and not far_is_client:
        t.ended_by_peer_at = time.monotonic()
    return ended[0] if ended else "closed"


async def _read_line(reader: asyncio.StreamReader) -> str:
    line = bytearray()
    while not line.endswith(b"\n"):
        chunk = await reader.read(1)
        if not chunk:
            raise LinkError("the peer closed the connection")
        line += chunk
        if len(line) > MAX_LINE_BYTES:
            raise LinkError(f"a preamble line longer than {MAX_LINE_BYTES} bytes")
    return line.decode("utf-8", errors="replace").strip()


async def _send_line(writer: asyncio.StreamWriter, text: str) -> None:
    writer.write(text.encode()[:MAX_LINE_BYTES - 1] + b"\n")
    await writer.drain()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {HANDSHAKE_S:g}s"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__
