"""Fixtures of the hostile-input tests: a daemon on a namespace LAN, raw HTTP, the daemon's RSS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Fixtures of other suites used here: a real tmpfs of a given size (a full disk that is
# really full), a fresh cluster key file.
from tests.foundation.conftest import tmpfs  # noqa: F401
from tests.lan.conftest import cluster_key  # noqa: F401
from tests.lan.netlab import Lan
from tests.support.daemon import DaemonProcess

RAW_TIMEOUT_S = 10.0


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Namespaces "srv" (the daemon) and "cli" (a hostile LAN host) on a bridge the test
    process also reaches from the root namespace."""
    net = Lan.create(["srv", "cli"], multicast=False)
    yield net
    net.destroy()


@pytest.fixture
async def lan_daemon(lan: Lan, cluster_key: Path,  # noqa: F811 - the fixture above
                     daemon_factory: Callable[..., Any]
                     ) -> AsyncIterator[Callable[..., Awaitable[tuple[DaemonProcess, str]]]]:
    """``await lan_daemon(**sections)``: a daemon in "srv" bound to 0.0.0.0; (it, its LAN URL,
    https).
    Requests from the test process come from the LAN (the bridge), not from loopback."""

    async def make(**sections: dict[str, Any]) -> tuple[DaemonProcess, str]:
        cfg: dict[str, Any] = {"http": {"host": "0.0.0.0"},
                               "security": {"cluster_key_file": str(cluster_key)}}
        for name, values in sections.items():
            cfg.setdefault(name, {}).update(values)
        d = await daemon_factory(netns=lan.ns("srv"), **cfg)
        return d, f"https://{lan.addr('srv')}:{d.port}"

    yield make


def rss_bytes(d: DaemonProcess) -> int:
    """The daemon's resident memory now (``ip netns exec`` execs it: the pid is the daemon's)."""
    assert d.proc is not None
    for line in Path(f"/proc/{d.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def raw_request(host: str, port: int, head: bytes, body: bytes = b"", *,
                      timeout: float = RAW_TIMEOUT_S, tls: bool = False) -> tuple[int, bytes]:
    """Send ``head`` (and ``body``, ignoring a server that stops reading), then read the
    answer until the server closes or the status line and headers are in; (status, raw)."""
    ctx = None
    if tls:  # the box's HTTPS, as a stranger who accepted its certificate
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=ctx),
                                            timeout)
    try:
        writer.write(head)
        if body:
            writer.write(body)
        try:
            await asyncio.wait_for(writer.drain(), timeout)
        except (ConnectionError, TimeoutError):
            pass  # the server answered and stopped reading: what it said is what counts
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            data += chunk
        head_end = data.find(b"\r\n\r\n")
        length = 0
        for line in data[:head_end].split(b"\r\n")[1:]:
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while head_end >= 0 and len(data) < head_end + 4 + length:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            data += chunk
        status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
        return status, data
    finally:
        writer.close()

