"""static_peers on a LAN whose multicast is blocked (no multicast route, multicast off)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.lan.netlab import MEMBER_IFACE, Lan, LanNode
from tests.lan.waiting import wait_for

pytestmark = pytest.mark.lan

# Long enough for zeroconf's first queries and every daemon's answers and announcements.
BROWSE_S = 3.0


@pytest.fixture
def lan():
    """Overrides the multicast LAN: a (core) and b (edge) with multicast off."""
    net = Lan.create(["a", "b"], multicast=False)
    yield net
    net.destroy()


async def test_static_peers_work_when_multicast_is_blocked(lan, daemon_factory, cluster_key,
                                                           tmp_path):
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
        # Both daemons do send mDNS (it is the LAN that drops it) ...
        for node in (core, edge):
            _, status = await node.get_json("/api/status")
            assert status["components"]["discovery"]["mdns"] is True, status["components"]
            assert status["components"]["discovery"]["service"]
        # ... yet a browse from the edge's box hears only that box's own daemon (so the
        # browse works), never the core across the LAN,
        rows = await _browse(lan, "b", cluster_key, tmp_path)
        assert [r["name"] for r in rows] == ["edge-b"], rows
        # the core, browsing all along, never heard of the edge,
        assert await core.peers() == []
        # and the edge still has its static core, trusted and healthy.
        assert await trusted()
    finally:
        await core.close()
        await edge.close()


async def _browse(lan: Lan, member: str, key: Path, tmp_path: Path) -> list[dict]:
    """``hybrid-agent discover --json`` in ``member``'s namespace (mDNS only, no static peers)."""
    cfg = tmp_path / "discover.yaml"
    cfg.write_text(yaml.safe_dump({
        "node": {"tier": "edge", "state_dir": str(tmp_path / "discover-state")},
        "discovery": {"interfaces": [MEMBER_IFACE]},
        "security": {"cluster_key_file": str(key)}}))
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", lan.ns(member), sys.executable, "-m", "appliance.cli",
        "discover", "--timeout", str(BROWSE_S), "--json", "--config", str(cfg),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)
