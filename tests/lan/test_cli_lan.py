"""`hybrid-agent discover` on the namespace LAN, with no daemon on the asking box."""

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

    async def discover():
        proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", lan.ns("b"), sys.executable, "-m", "appliance.cli",
            "discover", "--timeout", "1.5", "--json", "--config", str(cfg),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        rows = json.loads(out)
        return next((r for r in rows if r["id"] == health["id"]), None)

    row = await wait_for(discover, timeout=30, what="discover to list core-a")
    assert row["name"] == "core-a" and row["tier"] == "core"
    assert row["url"] == core.url
    assert row["trusted"] is True
