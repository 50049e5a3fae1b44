"""Fixtures of the LAN tests: a namespace LAN, a shared cluster key, daemons placed on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.security.keys import create_key_file
from tests.lan.netlab import MEMBER_IFACE, Lan
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.lan

WAIT_S = 15.0
POLL_S = 0.05


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Namespaces a (core), b (edge), c (second core), with multicast."""
    net = Lan.create(["a", "b", "c"])
    yield net
    net.destroy()


@pytest.fixture
def cluster_key(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.key"
    create_key_file(path)
    return path


class LanNode:
    """A daemon in a namespace, reached at its LAN address from the test process."""

    def __init__(self, proc: DaemonProcess, addr: str) -> None:
        self.proc = proc
        self.addr = addr

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.proc.port}"

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.get(self.url + path) as r:
            return r.status, await r.json(content_type=None)

    async def peers(self, **query: str) -> list[dict[str, Any]]:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        status, body = await self.get_json("/api/peers" + (f"?{q}" if q else ""))
        assert status == 200, body
        return body["peers"]


@pytest.fixture
async def lan_node(lan: Lan, daemon_factory: Callable[..., Any]
                   ) -> AsyncIterator[Callable[..., Awaitable[LanNode]]]:
    """``await lan_node(member, tier, key_file, **sections)``: a daemon on the LAN."""

    async def make(member: str, tier: str, key_file: Path | None, *,
                   wait_ready: bool = True, **sections: dict[str, Any]) -> LanNode:
        cfg: dict[str, Any] = {
            "node": {"tier": tier, "name": f"{tier}-{member}"},
            "http": {"host": "0.0.0.0"},
            "discovery": {"enabled": True, "interfaces": [MEMBER_IFACE]},
            "security": {"cluster_key_file": str(key_file or "/nonexistent/cluster.key")},
        }
        for name, values in sections.items():
            cfg.setdefault(name, {}).update(values)
        proc = await daemon_factory(netns=lan.ns(member), wait_ready=wait_ready, **cfg)
        return LanNode(proc, lan.addr(member))

    yield make


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = WAIT_S,
                   what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; its value. Fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except (aiohttp.ClientError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
