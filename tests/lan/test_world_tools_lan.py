"""World model and tools across a namespace LAN: found by discovery, signed, else refused."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.lan.peer import TestPeer
from tests.lan.waiting import wait_for

pytestmark = pytest.mark.lan

REQUEST_TIMEOUT_S = 15.0
PUT_FROM_LOOPBACK = """
import sys, urllib.request
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/api/world/porch.light",
                             data=b'"on"', method="PUT",
                             headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(req, timeout=15).read().decode())
"""


async def test_an_edge_uses_the_world_and_tools_of_the_core_discovery_found(
        lan: Any, lan_node: Any, cluster_key: Path, tmp_path: Path) -> None:
    core = await lan_node("a", "core", cluster_key, world={"mode": "local", "serve": True},
                          tools={"serve": True, "enabled": ["calculator"]})
    edge = await lan_node("b", "edge", cluster_key, world={"mode": "remote"},
                          tools={"enabled": ["calculator", "shell"]})
    peer_ = TestPeer(tmp_path / "peer", cluster_key.read_bytes())

    async def core_usable() -> Any:
        return next((p for p in await edge.peers() if p["name"] == "core-a"
                     and p["trusted"] and p["healthy"] and "world" in p["roles"]), None)

    peer = await wait_for(core_usable, what="core-a usable on the edge")
    try:
        await _world_and_tools(lan, core, edge, peer, peer_)
    finally:
        await peer_.close()


async def _world_and_tools(lan: Any, core: Any, edge: Any, peer: Any, peer_: TestPeer) -> None:
    # Over the node link, unsigned is refused.
    assert (await peer_.call(core.url, "GET", "/api/world", sign=False))[0] == 401
    assert (await peer_.call(edge.url, "GET", "/api/world", sign=False))[0] == 401
    # The edge serves no world model to peers (world.serve is off on an edge) ...
    assert (await peer_.call(edge.url, "GET", "/api/world"))[0] == 403
    # ... but on its own loopback, a write lands in the core's world model: the edge's
    # RemoteWorld signs its hop across the LAN, and the core's guard checks it.
    port = edge.proc.port
    put = await asyncio.to_thread(lan.run, "b", sys.executable, "-c", PUT_FROM_LOOPBACK, str(port))
    entry = json.loads(put.stdout)
    assert entry["value"] == "on", put
    status, stored = await peer_.call(core.url, "GET", "/api/world/porch.light")
    assert status == 200 and stored == entry
    # The edge's shell runs on the core discovery selected for the tools role.
    status, listing = await peer_.call(edge.url, "GET", "/api/tools")
    assert status == 200
    where = {t["name"]: t["where"] for t in listing["tools"]}
    assert where == {"calculator": "local", "shell": peer["url"]}


async def test_a_core_without_world_serve_refuses_its_peers_not_its_people(
        lan: Any, lan_node: Any, cluster_key: Path, tmp_path: Path) -> None:
    core = await lan_node("a", "core", cluster_key, world={"mode": "local", "serve": False})
    peer_ = TestPeer(tmp_path / "peer", cluster_key.read_bytes())
    try:
        status, body = await peer_.call(core.url, "GET", "/api/world")
    finally:
        await peer_.close()
    assert status == 403 and body["error"]["code"] == "world_not_served"
    # world.serve is about other boxes: a paired device still sees the box's world.
    assert (await core.get_json("/api/world"))[0] == 200
