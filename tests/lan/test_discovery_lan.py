"""Discovery and trust between real daemons on a LAN of network namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lan.waiting import wait_for

pytestmark = pytest.mark.lan


def _by_name(peers: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((p for p in peers if p["name"] == name), None)


async def test_edge_lists_core_with_txt_fields_and_trusts_it(lan, lan_node, cluster_key):
    core = await lan_node("a", "core", cluster_key)
    edge = await lan_node("b", "edge", cluster_key)

    async def listed():
        p = _by_name(await edge.peers(), "core-a")
        return p if p and p["trusted"] and p["healthy"] else None

    peer = await wait_for(listed, what="the edge to list core-a as trusted and healthy")
    _, health = await core.get_json("/health")
    assert peer["id"] == health["id"]
    assert peer["tier"] == "core"
    assert peer["url"] == f"http://{lan.addr('a')}:{core.proc.port}"
    assert peer["version"] == health["version"]
    assert len(peer["kf"]) == 16
    assert peer["rtt_s"] is not None


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
