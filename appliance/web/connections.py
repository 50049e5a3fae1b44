"""The gate that caps open connections, in all and per LAN address, and the listening socket.

aiohttp accepts every connection it is offered, and each costs a file
descriptor: 1100 idle sockets from one LAN host once used up the process's
1024 and ``/health`` stopped answering. The listener (appliance.web.listener)
puts a :class:`ConnectionGate` in front of aiohttp's protocol: a connection
over ``http.max_connections`` (loopback has a reserve of its own beyond it,
so the box's own clients and health checks still get in) or over
``http.max_connections_per_client`` from one address gets a short 503 and is
closed before a byte of it is read. Silent and half-sent connections are
closed by aiohttp's keep-alive timer (``http.idle_timeout_s``), which runs
from the moment a connection is accepted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import http_exceptions

from appliance.logs import RateLimit
from appliance.security.addresses import is_loopback

log = logging.getLogger(__name__)

#: Connections loopback may open beyond http.max_connections.
LOOPBACK_RESERVE = 64
#: File descriptors kept free for everything that is not a connection (models, journal, ...).
FD_RESERVE = 256
RETRY_AFTER_S = 5
BACKLOG = 512


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections may be open at once."""

    total: int
    per_client: int


def refusal(message: str) -> bytes:
    """A complete HTTP/1.1 503 answer in the API's error shape, ending the connection."""
    body = json.dumps({"error": {"message": message, "type": "service_unavailable",
                                 "param": None, "code": "too_many_connections"}}).encode()
    head = ("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            f"Retry-After: {RETRY_AFTER_S}\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class ConnectionGate:
    """Counts open connections and makes the protocol of each new one (see the module doc)."""

    def __init__(self, limits: ConnectionLimits, make_protocol: Callable[[], Any]) -> None:
        self.limits = limits
        self._make_protocol = make_protocol
        self.open = 0
        self.by_client: Counter[str] = Counter()
        self.refused = 0
        self._log_limit = RateLimit(10.0)

    def __call__(self) -> asyncio.Protocol:
        return _GatedProtocol(self)

    def admit(self, host: str) -> str:
        """'' to let a connection from ``host`` in, else why not."""
        if is_loopback(host):
            if self.open >= self.limits.total + LOOPBACK_RESERVE:
                return f"{self.open} connections are open (http.max_connections)"
            return ""
        if self.open >= self.limits.total:
            return f"{self.open} connections are open (http.max_connections)"
        if self.by_client[host] >= self.limits.per_client:
            return (f"{self.by_client[host]} connections from {host} are open "
                    "(http.max_connections_per_client)")
        return ""

    def opened(self, host: str) -> None:
        self.open += 1
        self.by_client[host] += 1

    def closed(self, host: str) -> None:
        self.open -= 1
        self.by_client[host] -= 1
        if self.by_client[host] <= 0:
            del self.by_client[host]

    def refuse(self, host: str, why: str) -> None:
        self.refused += 1
        quiet = self._log_limit.ready()
        if quiet is not None:
            log.warning("refusing a connection from %s: %s%s", host, why,
                        f" ({quiet} more refused since the last such line)" if quiet else "")


class _GatedProtocol(asyncio.Protocol):
    """Admits or refuses one connection, then hands every event to aiohttp's protocol."""

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate = gate
        self._inner: Any = None
        self._host = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        self._host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        why = self._gate.admit(self._host)
        if why:
            self._gate.refuse(self._host, why)
            assert isinstance(transport, asyncio.Transport)
            transport.write(refusal(f"too many connections: {why}; retry later"))
            transport.close()
            return
        self._gate.opened(self._host)
        self._inner = self._gate._make_protocol()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._gate.closed(self._host)
            self._inner.connection_lost(exc)
            self._inner = None

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


#: The first file descriptor systemd passes (sd_listen_fds(3)).
LISTEN_FDS_START = 3


def inherited_socket(env: dict[str, str] | None = None) -> socket.socket | None:
    """The listening socket systemd passed (socket activation, ``$LISTEN_FDS``), or None."""
    env = dict(os.environ) if env is None else env
    if env.get("LISTEN_PID") != str(os.getpid()) or int(env.get("LISTEN_FDS", "0") or 0) < 1:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for our children
    sock = socket.socket(fileno=LISTEN_FDS_START)
    sock.set_inheritable(False)
    return sock


class MalformedRequestLog(logging.Filter):
    """aiohttp logs every unparsable request (a 100 kB header line, garbage bytes) with a
    traceback at ERROR. They come from the network, not from a bug: one WARNING line per
    ``interval_s`` with the count, and no traceback."""

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self._limit = RateLimit(interval_s)

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, http_exceptions.HttpProcessingError):
            return True
        quiet = self._limit.ready()
        if quiet is None:
            return False
        what = str(getattr(exc, "message", "") or exc).splitlines()[0][:120]
        said = record.getMessage()
        record.msg = "%s: %d %s%s"
        record.args = (said, exc.code, what,
                       f" ({quiet} more since the last such line)" if quiet else "")
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_malformed_requests() -> None:
    """Install :class:`MalformedRequestLog` on aiohttp's server logger (once)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestLog) for f in logger.filters):
        logger.addFilter(MalformedRequestLog())


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (never past the hard limit); the new
    soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, target, exc)
    return soft


def connection_limits(total: int, per_client: int) -> ConnectionLimits:
    """The limits to apply: ``total`` lowered, with a warning, to fit the open-files limit."""
    soft = raise_open_files_limit(total + LOOPBACK_RESERVE + FD_RESERVE)
    fits = soft - LOOPBACK_RESERVE - FD_RESERVE
    if fits < total:
        log.warning("http.max_connections lowered from %d to %d: the open-files limit is %d "
                    "(raise LimitNOFILE= in the unit)", total, max(fits, 8), soft)
        total = max(fits, 8)
    return ConnectionLimits(total=total, per_client=min(per_client, total))
