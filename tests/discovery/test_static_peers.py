"""static_peers over loopback: two real daemons, no mDNS, the edge trusts and selects the core."""

from __future__ import annotations

from appliance.security.keys import create_key_file
from tests.lan.waiting import wait_for


async def test_a_static_peer_is_trusted_listed_and_dropped_from_selection_when_dead(
        daemon_factory, tmp_path):
    key_file = tmp_path / "cluster.key"
    create_key_file(key_file)
    sec = {"cluster_key_file": str(key_file)}
    core = await daemon_factory(node={"name": "core-1", "tier": "core"}, security=sec)
    edge = await daemon_factory(node={"name": "edge-1"}, security=sec,
                                discovery={"enabled": False, "static_peers": [core.url],
                                           "probe_interval_s": 0.5})

    async def trusted():
        _, body = await edge.get_json("/api/peers")
        return next((p for p in body["peers"] if p["trusted"] and p["healthy"]), None)

    peer = await wait_for(trusted, what="the edge to trust its static core")
    _, health = await core.get_json("/health")
    assert peer["id"] == health["id"] and peer["source"] == "static"
    assert peer["url"] == core.url and peer["tier"] == "core"
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
