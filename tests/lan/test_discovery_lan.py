"""Discovery and trust between real daemons on a LAN of network namespaces."""

from __future__ import annotations

from typing import Any

import pytest

from tests.lan.conftest import wait_for

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
    status, health = await core.get_json("/health")
    assert peer["id"] == health["id"]
    assert peer["tier"] == "core"
    assert peer["url"] == f"http://{lan.addr('a')}:{core.proc.port}"
    assert peer["version"] == health["version"]
    assert len(peer["kf"]) == 16
    assert peer["rtt_s"] is not None
