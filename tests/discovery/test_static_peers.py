"""static_peers over loopback: two real daemons, no mDNS, the edge trusts and selects the core."""

from __future__ import annotations

import asyncio
import sys

from appliance.security.keys import create_key_file
from tests.lan.waiting import wait_for
from tests.support.daemon import free_port


async def test_a_static_peer_is_trusted_listed_and_dropped_from_selection_when_dead(
        daemon_factory, tmp_path):
    key_file = tmp_path / "cluster.key"
    create_key_file(key_file)
    sec = {"cluster_key_file": str(key_file)}
    core = await daemon_factory(node={"name": "core-1", "tier": "core"}, security=sec)
    edge = await daemon_factory(node={"name": "edge-1"}, security=sec,
                                discovery={"enabled": False, "static_peers": [core.node_url],
                                           "probe_interval_s": 0.5})

    async def trusted():
        _, body = await edge.get_json("/api/peers")
        return next((p for p in body["peers"] if p["trusted"] and p["healthy"]), None)

    peer = await wait_for(trusted, what="the edge to trust its static core")
    _, health = await core.get_json("/health")
    assert peer["id"] == health["id"] and peer["source"] == "static"
    assert peer["url"] == core.node_url and peer["tier"] == "core"
    _, status = await edge.get_json("/api/status")
    assert [p["id"] for p in status["peers"]] == [health["id"]]

    await core.stop(9)

    async def down():
        _, body = await edge.get_json("/api/peers")
        return body["peers"] and not body["peers"][0]["healthy"]

    await wait_for(down, what="the edge to mark the dead core down")
    _, body = await edge.get_json("/api/peers")
    assert body["peers"][0]["id"] == health["id"]  # a static peer is kept for its return


async def test_peers_api_validates_its_query(daemon_factory):
    d = await daemon_factory()
    status, body = await d.get_json("/api/peers?role=" + "x" * 100)
    assert status == 400 and body["error"]["param"] == "role"
    status, body = await d.get_json("/api/peers?model=m")
    assert status == 400 and body["error"]["param"] == "model"
    status, body = await d.get_json("/api/peers?role=llm")
    assert status == 200 and body == {"role": "llm", "model": None, "peers": []}


async def test_a_static_peer_that_cannot_prove_the_key_is_listed_untrusted_with_why(
        daemon_factory, tmp_path):
    ours, theirs = tmp_path / "ours.key", tmp_path / "theirs.key"
    create_key_file(ours)
    create_key_file(theirs)
    stranger = await daemon_factory(node={"name": "stranger", "tier": "core"},
                                    security={"cluster_key_file": str(theirs)})
    nobody = f"https://127.0.0.1:{free_port()}"  # nothing listens here
    edge = await daemon_factory(node={"name": "edge-1"},
                                security={"cluster_key_file": str(ours)},
                                discovery={"enabled": False, "probe_interval_s": 0.5,
                                           "static_peers": [stranger.node_url, nobody]})

    async def both_listed():
        _, body = await edge.get_json("/api/peers")
        by_url = {p["url"]: p for p in body["peers"]}
        return by_url if stranger.node_url in by_url and nobody in by_url else None

    by_url = await wait_for(both_listed, what="both static peers to be listed")
    for url, why in ((stranger.node_url, "not endorsed by this cluster's key"),
                     (nobody, "failed")):
        peer = by_url[url]
        assert peer["source"] == "static" and not peer["trusted"] and not peer["healthy"]
        assert why in peer["problem"], peer
    # Listed, never chosen: no role query returns them.
    for role in ("llm", "tools", "world"):
        _, body = await edge.get_json(f"/api/peers?role={role}")
        assert body["peers"] == [], body
    _, status = await edge.get_json("/api/status")
    assert "0/2 peers usable" in status["status"], status
    # The CLI names each with its URL and the reason.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.cli", "status", "--url", edge.url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0, out
    assert f"{stranger.node_url} untrusted down (" in out and "cluster's key" in out, out
