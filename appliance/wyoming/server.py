"""The Wyoming TCP server: connections, limits, and routing events to the services.

Each service (asr, tts, handle; wake once it exists) contributes its program to
``info`` and opens one session per connection that answers its event types.
``describe`` is answered at once from what the services know without their
models, so Home Assistant (1 s timeout, three tries) sees the box while Whisper
and piper still load; requests made during loading wait for them.

Limits: ``wyoming.max_connections`` open at once (one more is told so in an
``error`` event and closed), every header/data/payload length bounded
(:mod:`appliance.wyoming.framing`), one complete event per
``wyoming.idle_timeout_s``, and each service bounds what it buffers. Peers are
admitted by :class:`~appliance.wyoming.access.AccessPolicy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Info
from wyoming.ping import Pong

from appliance.node import Component
from appliance.tasks import cancel_and_wait
from appliance.wyoming.access import AccessPolicy, Level
from appliance.wyoming.framing import MAX_HEADER_BYTES, FramingError, read_event, write_event

log = logging.getLogger(__name__)

#: A peer's own event names are cut to this before they reach a log or an error message.
SHOWN_CHARS = 64
#: Writing to a peer that stopped reading gives up after this long.
WRITE_TIMEOUT_S = 30.0
#: A refused peer is logged at most this often.
REFUSAL_LOG_S = 60.0

Send = Callable[[Event], Awaitable[None]]


class Session(Protocol):
    """One service's state on one connection."""

    #: Event types this session answers.
    types: frozenset[str]
    #: Of those, the ones that make it the receiver of the audio-* events that follow.
    opens: frozenset[str]

    async def on_event(self, event: Event) -> None:
        """Answer ``event``; a bad request is answered with an ``error`` event, not raised."""

    async def close(self) -> None:
        """The connection ended: stop whatever is still running."""


class Service(Protocol):
    """A capability served over Wyoming."""

    #: The ``info`` key it fills: asr, tts, handle or wake.
    kind: str
    #: The access level a peer needs to see and use it.
    level: Level

    def program(self) -> Any:
        """Its ``info`` entry (a ``wyoming.info`` program), or None when it cannot serve."""

    def open(self, send: Send) -> Session:
        """A session for one connection; ``send`` writes an event to that peer."""


class WyomingServer(Component):
    """Listens on ``host:port`` and serves ``services`` to admitted peers."""

    name = "wyoming"
    start_timeout_s = 10.0

    def __init__(self, services: Sequence[Service], access: AccessPolicy, *, host: str,
                 port: int, max_connections: int, idle_timeout_s: float) -> None:
        self.services = list(services)
        self.access = access
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.idle_timeout_s = idle_timeout_s
        self.stats = {"connections": 0, "refused": 0, "busy": 0, "bad_events": 0}
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._last_refusal_log = 0.0

    # ------------------------------------------------------------ Component

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, limit=MAX_HEADER_BYTES + 1,
                reuse_address=True)
        except OSError as exc:
            raise OSError(f"cannot listen for Wyoming on {self.host}:{self.port}: "
                          f"{exc.strerror or exc} (change wyoming.port)") from None
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("wyoming: listening on %s:%d (%s)", self.host, self.port,
                 ", ".join(s.kind for s in self.services))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await cancel_and_wait(list(self._connections))
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def describe(self) -> dict[str, Any]:
        return {"port": self.port, "services": [s.kind for s in self.services],
                "open": len(self._connections), **self.stats}

    def status_fragment(self) -> str:
        return f"wyoming :{self.port}" if self._server is not None else ""

    # ------------------------------------------------------------ what a peer sees

    def info(self, level: Level) -> Info:
        """The ``info`` answer for a peer at ``level``; never a satellite."""
        programs: dict[str, list[Any]] = {"asr": [], "tts": [], "handle": [], "wake": []}
        for service in self.services:
            if _allows(level, service.level):
                program = service.program()
                if program is not None:
                    programs[service.kind].append(program)
        return Info(asr=programs["asr"], tts=programs["tts"], handle=programs["handle"],
                    wake=programs["wake"])

    # ------------------------------------------------------------ connections

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      ) -> None:
        peer = writer.get_extra_info("peername")
        address = peer[0] if peer else None
        level = self.access.level(address)
        if level is Level.NONE:
            self.stats["refused"] += 1
            self._log_refusal(address)
            await _close(writer)
            return
        if len(self._connections) >= self.max_connections:
            self.stats["busy"] += 1
            with contextlib.suppress(Exception):
                await asyncio.wait_for(write_event(Error(
                    text=f"this box already has {self.max_connections} Wyoming connections "
                         "open (wyoming.max_connections); try again later",
                    code="too-many-connections").event(), writer), WRITE_TIMEOUT_S)
            await _close(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self.stats["connections"] += 1
        try:
            await _Connection(self, reader, writer, level).run()
        finally:
            self._connections.discard(task)
            await _close(writer)

    def _log_refusal(self, address: str | None) -> None:
        now = time.monotonic()
        if now - self._last_refusal_log >= REFUSAL_LOG_S:
            self._last_refusal_log = now
            log.warning("wyoming: refused a connection from %s: not loopback, not on this "
                        "box's private networks and not in wyoming.clients", address)


class _Connection:
    """One peer: reads events, hands each to the session that answers its type."""

    def __init__(self, server: WyomingServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, level: Level) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.level = level
        self._write_lock = asyncio.Lock()
        self.sessions = [s.open(self.send) for s in server.services
                         if _allows(level, s.level)]
        self.routes: dict[str, Session] = {}
        for session in self.sessions:
            for kind in session.types:
                self.routes.setdefault(kind, session)
        self.audio_to: Session | None = self.routes.get("audio-start")

    async def send(self, event: Event) -> None:
        async with self._write_lock:
            await asyncio.wait_for(write_event(event, self.writer), WRITE_TIMEOUT_S)

    async def run(self) -> None:
        try:
            while True:
                try:
                    event = await asyncio.wait_for(read_event(self.reader),
                                                   self.server.idle_timeout_s)
                except TimeoutError:
                    await self._error(f"no complete event for {self.server.idle_timeout_s:.0f}"
                                      " s (wyoming.idle_timeout_s); closing", "idle")
                    return
                except FramingError as exc:
                    self.server.stats["bad_events"] += 1
                    await self._error(str(exc), exc.code)
                    return
                if event is None:
                    return
                await self._dispatch(event)
        except (ConnectionError, TimeoutError):
            return  # the peer went away or stopped reading
        finally:
            for session in self.sessions:
                with contextlib.suppress(Exception):
                    await session.close()

    async def _dispatch(self, event: Event) -> None:
        kind = event.type
        if kind == "describe":
            await self.send(self.server.info(self.level).event())
            return
        if kind == "ping":
            await self.send(Pong(text=str(event.data.get("text") or "")[:SHOWN_CHARS]).event())
            return
        session = self.audio_to if kind.startswith("audio-") else self.routes.get(kind)
        if session is None:
            await self._error(f"this server does not answer {kind[:SHOWN_CHARS]!r} events"
                              + ("" if kind not in _AGENT_EVENTS else
                                 "; the agent is served only to loopback and "
                                 "wyoming.clients"), "unsupported-event")
            return
        if kind in session.opens:
            self.audio_to = session
        await session.on_event(event)

    async def _error(self, text: str, code: str) -> None:
        with contextlib.suppress(Exception):
            await self.send(Error(text=text, code=code).event())


async def wait_ready(loaded: asyncio.Event, timeout_s: float, send: Send) -> bool:
    """Wait for models still loading (a request during start-up); False once an
    ``error`` event has said they did not load in time."""
    if loaded.is_set():
        return True
    try:
        await asyncio.wait_for(loaded.wait(), timeout_s)
    except TimeoutError:
        await send(Error(text="the speech models are still loading; try again later",
                         code="not-ready").event())
        return False
    return True


#: Events only a peer at the agent level gets answered.
_AGENT_EVENTS = frozenset({"transcript"})


def _allows(level: Level, needed: Level) -> bool:
    order = (Level.NONE, Level.SPEECH, Level.AGENT)
    return order.index(level) >= order.index(needed)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
