"""Discovery and trust between real daemons on a LAN of network namespaces."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.lan.peer import TestPeer
from tests.lan.waiting import wait_for

pytestmark = pytest.mark.lan

LLM_CORE = {"llm": {"mode": "local", "serve": True, "slots": 1, "context": 512}}
CHAT_PATH = "/v1/chat/completions"
REQUEST_TIMEOUT_S = 120.0


def _by_name(peers: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((p for p in peers if p["name"] == name), None)


@pytest.mark.model
async def test_edge_lists_core_with_txt_fields_and_trusts_it(lan, lan_node, cluster_key,
                                                             models_dir, tmp_path):
    core = await lan_node("a", "core", cluster_key, node={"models_dir": str(models_dir)},
                          **LLM_CORE)
    edge = await lan_node("b", "edge", cluster_key)

    async def listed():
        p = _by_name(await edge.peers(), "core-a")
        return p if p and p["trusted"] and p["healthy"] else None

    peer = await wait_for(listed, what="the edge to list core-a as trusted and healthy")
    _, health = await core.get_json("/health")
    _, status = await core.get_json("/api/status")
    test_peer = TestPeer(tmp_path / "peer", cluster_key.read_bytes())
    try:
        code, models = await test_peer.call(core.url, "GET", "/v1/models")
    finally:
        await test_peer.close()
    assert code == 200, models
    assert peer["id"] == health["id"] == status["id"]
    assert peer["tier"] == "core"
    assert peer["url"] == f"https://{lan.addr('a')}:{core.proc.port}"
    assert peer["version"] == health["version"]
    assert len(peer["kf"]) == 16
    assert peer["rtt_s"] is not None
    assert "llm" in status["roles"] and peer["roles"] == status["roles"]
    # /v1/models lists the "default" alias first, then the models the TXT announces.
    assert peer["models"] == [m["id"] for m in models["data"]][1:] != []
    assert peer["load"] == 0 == status["inflight"]


@pytest.mark.model
async def test_the_edge_sees_a_cores_load_rise_while_a_request_is_in_flight_and_fall_after(
        lan, lan_node, cluster_key, models_dir, tmp_path):
    core = await lan_node("a", "core", cluster_key, node={"models_dir": str(models_dir)},
                          **LLM_CORE)
    edge = await lan_node("b", "edge", cluster_key)

    async def load_on_edge(check):
        p = _by_name(await edge.peers(), "core-a")
        return p if p and p["trusted"] and p["healthy"] and check(p["load"]) else None

    await wait_for(lambda: load_on_edge(lambda load: load == 0), what="core-a idle on the edge")
    body = json.dumps({"model": "default", "max_tokens": 1,
                       "messages": [{"role": "user", "content": "Hi."}]}).encode()
    test_peer = TestPeer(tmp_path / "peer", cluster_key.read_bytes())
    _, health = await core.get_json("/health")
    headers = {"Content-Type": "application/json",
               **test_peer.sign("POST", CHAT_PATH, body, health["id"])}
    release = asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        # The core counts the request in flight from its headers on; the rest of the
        # body (and so the request) waits until the test has seen the load on the edge.
        yield body[:8]
        await release.wait()
        yield body[8:]

    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        async def chat() -> tuple[int, Any]:
            # Over the node link, as a peer sends it.
            async with s.post(core.url + CHAT_PATH, data=held_body(), headers=headers,
                              ssl=test_peer.tls.client_context(health["id"]),
                              server_hostname=test_peer.tls.server_hostname(health["id"])) as r:
                return r.status, await r.json(content_type=None)

        held = asyncio.create_task(chat())
        try:
            busy = await wait_for(lambda: load_on_edge(lambda load: load > 0),
                                  what="the edge to see core-a's load above 0")
            _, status = await core.get_json("/api/status")
            assert status["inflight"] >= 1
            assert busy["load"] > 0
        finally:
            release.set()
            code, answer = await held
    assert code == 200, answer
    assert answer["system_fingerprint"]
    await wait_for(lambda: load_on_edge(lambda load: load == 0),
                   what="the edge to see core-a's load back at 0")


async def _usable(edge, name: str):
    p = _by_name(await edge.peers(), name)
    return p if p and p["trusted"] and p["healthy"] else None


async def _first_role(node) -> str:
    _, body = await node.get_json("/api/status")
    assert body["roles"], f"{body['name']} offers no role to select by: {body}"
    return body["roles"][0]


async def test_kill_9_of_the_serving_core_moves_selection_to_the_other_core(
        lan, lan_node, cluster_key):
    core_a = await lan_node("a", "core", cluster_key)
    core_c = await lan_node("c", "core", cluster_key)
    edge = await lan_node("b", "edge", cluster_key)
    await wait_for(lambda: _usable(edge, "core-a"), what="core-a usable on the edge")
    await wait_for(lambda: _usable(edge, "core-c"), what="core-c usable on the edge")
    role = await _first_role(core_a)
    chosen = await edge.peers(role=role)
    assert {p["name"] for p in chosen} == {"core-a", "core-c"}
    serving = {"core-a": core_a, "core-c": core_c}[chosen[0]["name"]]
    other = "core-c" if chosen[0]["name"] == "core-a" else "core-a"

    await serving.stop(9)

    async def moved():
        peers = await edge.peers(role=role)
        return peers if [p["name"] for p in peers] == [other] else None

    await wait_for(moved, what=f"selection of {role!r} to move to {other}")
    dead = _by_name(await edge.peers(), chosen[0]["name"])
    assert dead is not None and dead["healthy"] is False  # down, still listed (no goodbye)


async def test_clean_stop_sends_goodbye_and_the_edge_drops_the_peer(lan, lan_node, cluster_key):
    core = await lan_node("a", "core", cluster_key)
    edge = await lan_node("b", "edge", cluster_key)
    await wait_for(lambda: _usable(edge, "core-a"), what="core-a usable on the edge")
    assert await core.stop() == 0

    async def dropped():
        return _by_name(await edge.peers(), "core-a") is None

    # Only a goodbye removes a peer this soon: a dead-but-silent one stays listed as down.
    await wait_for(dropped, what="the edge to drop core-a after its goodbye")
    # And it was the goodbye (browser -> registry.lost), not the stale-peer expiry
    # (FORGET_AFTER_S after the last announcement), that removed it.
    log = edge.proc.log_path.read_text(errors="replace")
    assert f"peer core-a ({core.url}) said goodbye" in log, log[-4000:]
    assert "forgot peer" not in log


async def test_two_nodes_with_one_name_get_unique_service_names(lan, lan_node, cluster_key):
    first = await lan_node("a", "core", cluster_key, node={"name": "twin"})
    second = await lan_node("c", "core", cluster_key, node={"name": "twin"})
    edge = await lan_node("b", "edge", cluster_key)

    async def both():
        peers = [p for p in await edge.peers() if p["name"].startswith("twin")]
        return peers if len(peers) == 2 else None

    peers = await wait_for(both, what="the edge to list both twins")
    assert len({p["name"] for p in peers}) == 2
    assert {p["url"] for p in peers} == {first.url, second.url}
    _, status = await second.get_json("/api/status")
    assert status["components"]["discovery"]["service"] != "twin._hybrid-agent._tcp.local."
