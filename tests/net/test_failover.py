"""Peer selection with failover (appliance.net), used by tools and world as by the LLM: a core
that cannot be reached is skipped and reported to the registry; a call that may have arrived
is never sent to a second core."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.discovery.registry import PeerRegistry
from appliance.net.peer import PeerClient, PeerError
from appliance.net.peers import Endpoint, Selection
from appliance.security.keys import create_key_file
from appliance.security.signing import Signer
from appliance.tools.base import invoke
from appliance.tools.calculator import Calculator
from appliance.tools.remote import RemoteToolProxy
from appliance.world.remote import RemoteWorld
from tests.support.nodelink import node_tls

GONE_ID = "0" * 32
CALL_TIMEOUT_S = 30.0


def sign_with(key: bytes) -> Callable[..., Any]:
    signer = Signer(key)

    def sign(method: str, path: str, body: bytes, *, receiver: str,
             headers: Any = None) -> Any:
        return signer.sign_headers(method, path, body, receiver=receiver, headers=headers)

    return sign


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_tools_and_world_skip_a_core_that_is_gone_and_mark_it_down(
        daemon_factory: Callable[..., Any], tmp_path: Path) -> None:
    key_file = tmp_path / "cluster.key"
    key = create_key_file(key_file)
    core = await daemon_factory(node={"tier": "core"},
                                tools={"serve": True, "enabled": ["calculator"]},
                                world={"mode": "local", "serve": True},
                                security={"cluster_key_file": str(key_file)})
    _, health = await core.get_json("/health")
    registry = PeerRegistry()
    roles = {"roles": "tools,world"}
    # The core that answers, and one trusted before that has gone away since: it looks best
    # (no load), so it is asked first.
    registry.add_static(core.node_url, {"id": health["id"], "name": "core", "load": "0.5",
                                        **roles})
    registry.add_static(f"https://127.0.0.1:{closed_port()}",
                        {"id": GONE_ID, "name": "gone", "load": "0", **roles})
    assert [p.id for p in registry.select("tools")] == [GONE_ID, health["id"]]
    ours = node_tls(tmp_path / "ours", key)

    def client(role: str) -> PeerClient:
        return PeerClient.over(Selection(role, lambda: registry), sign_with(key), lambda: ours)

    tools = client("tools")
    try:
        obs = await invoke(RemoteToolProxy(Calculator, tools), {"expression": "6*7"},
                           CALL_TIMEOUT_S)
        assert obs == {"ok": True, "result": {"expression": "6*7", "value": 42}}
    finally:
        await tools.close()
    gone = registry.get(GONE_ID)
    assert gone is not None and not gone.healthy and "ConnectionRefusedError" in gone.problem
    assert [p.id for p in registry.select("world")] == [health["id"]]  # for every part

    gone.healthy = True  # as if a probe had found it back: the world fails over the same way
    world = RemoteWorld(client("world"))
    try:
        entry = await world.set("hall.light", "on")
        assert (entry.value, (await world.get("hall.light")).value) == ("on", "on")  # type: ignore[union-attr]
    finally:
        await world.stop()
    assert not gone.healthy


async def test_a_call_that_may_have_arrived_is_not_sent_again_but_a_read_is() -> None:
    hits: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        hits.append(request.method)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/api/thing", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    healthy_port = runner.addresses[0][1]

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # the request arrives; no answer ever leaves
        await asyncio.sleep(3600)

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    down: list[str] = []
    peers = [Endpoint("a" * 32, "silent", f"http://127.0.0.1:{silent_port}"),
             Endpoint("b" * 32, "healthy", f"http://127.0.0.1:{healthy_port}")]
    client = PeerClient(lambda: peers, mark_down=lambda peer_id, _problem: down.append(peer_id))
    try:
        with pytest.raises(PeerError, match="TimeoutError"):
            await client.request("POST", "/api/thing", {"x": 1}, timeout_s=0.5)
        assert hits == [] and down == ["a" * 32]
        status, body, _ = await client.request("GET", "/api/thing", timeout_s=0.5)
        assert (status, body, hits) == (200, {"ok": True}, ["GET"])
        assert down == ["a" * 32, "a" * 32]
    finally:
        await client.close()
        silent.close()
        await runner.cleanup()
