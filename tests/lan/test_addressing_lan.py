"""IPv6-only discovery, and re-announcement when a node's address changes."""

from __future__ import annotations

import pytest

from tests.lan.waiting import wait_for

pytestmark = pytest.mark.lan

IPV6_WAIT_S = 20.0


async def _usable(edge, name: str, url: str):
    p = next((p for p in await edge.peers() if p["name"] == name), None)
    return p if p and p["url"] == url and p["trusted"] and p["healthy"] else None


async def test_discovery_and_trust_over_ipv6_only(lan, lan_node, cluster_key):
    # The core listens on IPv6 only; the edge's API stays on IPv4 for the test to read.
    core = await lan_node("a", "core", cluster_key, discovery={"ip_version": "v6"},
                          http={"host": "::"})
    edge = await lan_node("b", "edge", cluster_key, discovery={"ip_version": "v6"})
    url = f"https://[{lan.addr6('a')}]:{core.proc.port}"
    try:
        peer = await wait_for(lambda: _usable(edge, "core-a", url), timeout=IPV6_WAIT_S,
                              what=f"the edge to reach core-a at {url}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the edge lists {await edge.peers()}") from None
    assert lan.addr6("a") in peer["addresses"]
    assert all(":" in a for a in peer["addresses"])  # no IPv4 record announced


async def test_a_changed_address_is_re_announced_and_trusted_again(lan, lan_node, cluster_key):
    core = await lan_node("a", "core", cluster_key)
    edge = await lan_node("b", "edge", cluster_key)
    await wait_for(lambda: _usable(edge, "core-a", core.url), what="core-a usable")
    prefix = lan.subnet.prefixlen
    new = str(lan.subnet.network_address + 101)
    # (Deleting a primary address also deletes its secondaries: delete first, then add.)
    lan.run("a", "ip", "addr", "del", f"{lan.addr('a')}/{prefix}", "dev", "veth0")
    lan.run("a", "ip", "addr", "add", f"{new}/{prefix}", "dev", "veth0")
    moved = f"https://{new}:{core.proc.port}"
    await wait_for(lambda: _usable(edge, "core-a", moved), timeout=20,
                   what=f"the edge to follow core-a to {moved}")
