"""Fixtures of the LAN tests: a namespace LAN, a shared cluster key, daemons placed on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.security.keys import create_key_file
from tests.lan.netlab import MEMBER_IFACE, Lan, LanNode


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
        node = LanNode(proc, lan.addr(member))
        made.append(node)
        return node

    made: list[LanNode] = []
    yield make
    for node in made:
        await node.close()
