"""static_peers on a LAN whose multicast is blocked (no multicast route, multicast off)."""

from __future__ import annotations

import pytest

from tests.lan.netlab import MEMBER_IFACE, Lan, LanNode
from tests.lan.waiting import wait_for

pytestmark = pytest.mark.lan


@pytest.fixture
def lan():
    """Overrides the multicast LAN: a (core) and b (edge) with multicast off."""
    net = Lan.create(["a", "b"], multicast=False)
    yield net
    net.destroy()


async def test_static_peers_work_when_multicast_is_blocked(lan, daemon_factory, cluster_key):
    link = lan.run("a", "ip", "-o", "link", "show", MEMBER_IFACE).stdout
    assert "MULTICAST" not in link.split(">")[0]
    assert "224.0.0.0" not in lan.run("a", "ip", "route").stdout

    def cfg(member: str, tier: str, **discovery):
        return {"netns": lan.ns(member), "node": {"tier": tier, "name": f"{tier}-{member}"},
                "http": {"host": "0.0.0.0"},
                "security": {"cluster_key_file": str(cluster_key)},
                "discovery": {"enabled": True, "interfaces": [MEMBER_IFACE], **discovery}}

    core = LanNode(await daemon_factory(**cfg("a", "core")), lan.addr("a"))
    edge = LanNode(await daemon_factory(**cfg("b", "edge", static_peers=[core.url])),
                   lan.addr("b"))

    async def trusted():
        p = next((p for p in await edge.peers() if p["name"] == "core-a"), None)
        return p if p and p["trusted"] and p["healthy"] else None

    try:
        peer = await wait_for(trusted, what="the edge to trust its static core")
        assert peer["source"] == "static" and peer["url"] == core.url
        # mDNS cannot cross this LAN: the core (no static peers) never heard of the edge.
        assert await core.peers() == []
    finally:
        await core.close()
        await edge.close()
