"""`hybrid-agent discover` on the namespace LAN, with and without a daemon on the asking box."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
import yaml

from tests.lan.netlab import MEMBER_IFACE
from tests.lan.waiting import wait_for

pytestmark = pytest.mark.lan


async def test_discover_lists_the_cores_and_which_prove_the_key(lan, lan_node, cluster_key,
                                                               tmp_path):
    core = await lan_node("a", "core", cluster_key)
    _, health = await core.get_json("/health")
    cfg = tmp_path / "cli.yaml"
    cfg.write_text(yaml.safe_dump({
        "node": {"tier": "edge", "state_dir": str(tmp_path / "state")},
        "discovery": {"interfaces": [MEMBER_IFACE]},
        "security": {"cluster_key_file": str(cluster_key)}}))

    async def run(*options: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", lan.ns("b"), sys.executable, "-m", "appliance.cli",
            "discover", "--timeout", "1.5", *options, "--config", str(cfg),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        return out.decode()

    async def discover():
        rows = json.loads(await run("--json"))
        return next((r for r in rows if r["id"] == health["id"]), None)

    def check(row) -> None:
        assert row["name"] == "core-a" and row["tier"] == "core"
        assert row["url"] == core.url
        assert row["trusted"] is True

    # No daemon on the asking box.
    check(await wait_for(discover, timeout=30, what="discover to list core-a"))

    # With the box's own daemon running (and holding UDP 5353 too).
    edge = await lan_node("b", "edge", cluster_key)
    _, status = await edge.get_json("/api/status")
    assert status["components"]["discovery"]["mdns"] is True
    check(await wait_for(discover, timeout=30, what="discover, next to a daemon, to list core-a"))

    async def table():
        out = await run()
        line = next((ln for ln in out.splitlines() if ln.startswith("core-a ")), None)
        return (out, line) if line else None

    out, line = await wait_for(table, timeout=30, what="discover's table to list core-a")
    assert out.splitlines()[0].split()[:4] == ["NAME", "TIER", "URL", "TRUST"]
    assert line.split()[:4] == ["core-a", "core", core.url, "trusted"], out
