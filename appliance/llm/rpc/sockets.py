"""The link's sockets as the kernel sees them: who owns a loopback connection and what
listens (read from /proc/self/net/tcp), and the keepalive a long-lived session needs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

KEEPALIVE_IDLE_S = 30
KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_COUNT = 3
TCP_ESTABLISHED = "01"
TCP_LISTEN = "0A"
# Under /proc/self: the unit's ProcSubset=pid hides /proc/net, not a process's own view.
PROC_NET_TCP = "/proc/self/net/tcp"


def socket_owner(client: Any, server: tuple[str, int], table: str = PROC_NET_TCP
                 ) -> int | None:
    """The uid owning the established IPv4 socket ``client`` -> ``server`` (None: not found)."""
    if not isinstance(client, tuple) or len(client) < 2:
        return None
    want_local, want_remote = _hex_addr(client[0], client[1]), _hex_addr(*server)
    for cols in _tcp_table(table):
        if cols[1] == want_local and cols[2] == want_remote and cols[3] == TCP_ESTABLISHED:
            return int(cols[7])
    return None


def listening(port: int, table: str = PROC_NET_TCP) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (read, not connected to)."""
    want = _hex_addr("127.0.0.1", port)
    return any(cols[1] == want and cols[3] == TCP_LISTEN for cols in _tcp_table(table))


def _tcp_table(table: str) -> list[list[str]]:
    try:
        with open(table) as fh:
            rows = [line.split() for line in fh.readlines()[1:]]
    except OSError:
        return []
    return [cols for cols in rows if len(cols) > 7]


def _hex_addr(ip: str, port: int) -> str:
    packed = socket.inet_aton(ip)
    return f"{int.from_bytes(packed, 'little'):08X}:{port:04X}"


def keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive on a long-lived connection, so a peer that vanished is found."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)


def close(writer: asyncio.StreamWriter) -> None:
    """Close, whatever state the connection is in."""
    with contextlib.suppress(Exception):
        writer.close()


def peer_name(writer: asyncio.StreamWriter) -> str:
    """host:port of the far end, for logs."""
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)
