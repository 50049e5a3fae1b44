"""Trust between boxes on the namespace LAN: a rogue advertiser gets nothing; requests are
signed for one node, once, and not across a restart; mDNS cannot rewrite a trusted peer; a
revoked node is refused by every other."""

from __future__ import annotations

import json
import secrets
import ssl
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from appliance.discovery.txt import SERVICE_TYPE
from appliance.security import keys
from tests.lan import clients
from tests.lan.netlab import LanNode
from tests.lan.peer import TestPeer
from tests.lan.waiting import wait_for
from tests.support.daemon import DaemonProcess, free_port
from tests.support.nodelink import node_tls
from tests.support.sse import read_events

pytestmark = pytest.mark.lan

RUNNER_AGENT = {"max_steps": 1, "max_tokens": 48,
                "experts": {"runner": {"system_prompt": "Run shell commands with the shell tool.",
                                       "tools": ["shell"], "tool_choice": "required"}}}
#: What /api/peers shows of a peer that a rogue record must not change.
SHOWN = ("id", "name", "url", "addresses", "port", "tier", "roles", "models", "version",
         "trusted", "healthy", "kf", "source")


@pytest.mark.model
async def test_a_rogue_advertiser_is_listed_untrusted_and_gets_no_request(
        lan, lan_node, cluster_key, models_dir, tmp_path):
    core = await lan_node("a", "core", cluster_key, node={"models_dir": str(models_dir)},
                          llm={"mode": "local", "serve": True, "slots": 1, "context": 2048},
                          tools={"serve": True}, world={"mode": "local", "serve": True})
    edge = await lan_node("b", "edge", cluster_key, llm={"mode": "remote"},
                          world={"mode": "remote"}, tools={"enabled": ["shell"]},
                          agent=RUNNER_AGENT)
    real = await wait_for(lambda: _peer(edge, "core-a", trusted=True), what="core-a trusted")
    _, status = await core.get_json("/api/status")
    assert set(status["roles"]) >= {"llm", "tools", "world"}, status["roles"]

    # The rogue: a TLS server that answers anything, with a node certificate of another key
    # (the best it can have without the cluster key)...
    seen: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"status": "ok", "ready": True, "id": rogue_id})

    rogue_id = secrets.token_hex(16)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    rogue_tls = node_tls(tmp_path / "rogue", keys.generate_key(), rogue_id)
    await web.TCPSite(runner, lan.host_addr, port,
                      ssl_context=_any_client(rogue_tls.server_context())).start()
    # ...advertised with plain python-zeroconf, copying the real core's TXT (roles, models,
    # even its kf) and claiming to be idle, so only trust keeps it from being chosen.
    azc = AsyncZeroconf(interfaces=[lan.host_addr])
    info = AsyncServiceInfo(
        SERVICE_TYPE, f"rogue-core.{SERVICE_TYPE}", port=port, server="rogue-core.local.",
        parsed_addresses=[lan.host_addr],
        properties={"id": rogue_id, "tier": "core", "roles": ",".join(status["roles"]),
                    "models": ",".join(real["models"]), "v": real["version"], "load": "0/64",
                    "kf": real["kf"]})
    try:
        await (await azc.async_register_service(info))
        rogue = await wait_for(lambda: _refused(edge, rogue_id),
                               what="the edge to list and refuse the rogue")
        assert rogue["trusted"] is False and rogue["healthy"] is False
        assert "certificate" in rogue["problem"], rogue["problem"]
        assert rogue["roles"] == status["roles"] and rogue["models"] == real["models"]
        for role in status["roles"]:
            assert [p["name"] for p in await edge.peers(role=role)] == ["core-a"]

        # A prompt, a remote tool call and a world write, all through the edge.
        answer = await clients.chat(lan, "b", edge.proc.port)
        assert answer["served_by"] == "core-a"
        events = await _agent_turn(edge, "List the files in /tmp.")
        call = next(data for kind, data in events if kind == "tool_call")
        assert call["name"] == "shell" and call["where"] == core.url
        result = next(data for kind, data in events if kind == "tool_result")
        # It ran on the core (whatever the tiny model asked the shell), not refused on the way.
        assert "tool server" not in result.get("error", ""), result
        entry = await clients.put_world(lan, "b", edge.proc.port, "porch.light", "on")
        assert entry["value"] == "on"

        # The trusted core received each of them; the rogue never got one request: the
        # edge's TLS refused its certificate before a byte of HTTP was sent.
        served = await _served(core)
        assert served[("/v1/chat/completions", "POST")] >= 2  # the chat and the agent's step
        assert served.get(("/api/tools/{name}", "POST"), 0) >= 1, (served, result)
        assert served[("/api/world/{key}", "PUT")] >= 1
        assert seen == [], f"the rogue was sent {seen}"
    finally:
        await azc.async_close()
        await runner.cleanup()


async def test_unsigned_wrongly_signed_replayed_and_stripped_requests_get_401(
        lan, lan_node, cluster_key, tmp_path):
    core = await lan_node("a", "core", cluster_key, world={"mode": "local", "serve": True})
    keyless = await lan_node("c", "core", None)
    key = keys.read_key(cluster_key)
    peer = TestPeer(tmp_path / "peer", key)
    path = "/api/world/lan.test"
    try:
        status, err = await peer.call(core.url, "GET", path, sign=False)
        assert status == 401 and err["error"]["code"] == "bad_signature"
        assert "not signed" in err["error"]["message"]
        for protected in ("/v1/models", "/api/tools"):
            assert (await peer.call(core.url, "GET", protected, sign=False))[0] == 401
        core_id = (await core.get_json("/health"))[1]["id"]
        wrong = TestPeer(tmp_path / "wrong", key)
        wrong.signer = type(peer.signer)(keys.generate_key())
        status, err = await wrong.call(core.url, "GET", path)
        assert status == 401 and "wrong signature" in err["error"]["message"]
        await wrong.close()

        good = peer.sign("GET", path, b"", core_id)
        assert (await peer.call(core.url, "GET", path, signed=good))[0] == 404
        status, err = await peer.call(core.url, "GET", path, signed=good)
        assert status == 401 and "replayed" in err["error"]["message"]

        body = b'{"value": 1}'
        signed_body = peer.sign("PUT", path, body, core_id)
        status, err = await peer.call(core.url, "PUT", path, b'{"value": 666}',
                                      signed=signed_body)
        assert status == 401 and "wrong signature" in err["error"]["message"]
        # A compare-and-set replayed without its If-Match would overwrite: refused.
        assert (await peer.call(core.url, "PUT", path, body))[0] == 200
        cas = peer.sign("PUT", path, b'"two"', core_id, {"If-Match": "1"})
        status, err = await peer.call(core.url, "PUT", path, b'"two"', signed=cas)
        assert status == 401 and "wrong signature" in err["error"]["message"]
        status, _ = await peer.call(core.url, "PUT", path, b'"two"', signed=cas,
                                    headers={"If-Match": "1"})
        assert status == 200

        # A node without the key has no node link at all; it says why.
        with pytest.raises((ssl.SSLError, OSError)):
            await peer.call(keyless.url, "GET", path)
        _, st = await keyless.get_json("/api/status")
        assert "NO CLUSTER KEY" in st["status"]
    finally:
        await peer.close()


async def test_a_signed_request_replayed_to_another_node_or_after_a_restart_gets_401(
        lan, lan_node, cluster_key, tmp_path):
    a = await lan_node("a", "core", cluster_key, world={"mode": "local", "serve": True})
    c = await lan_node("c", "core", cluster_key, world={"mode": "local", "serve": True})
    peer = TestPeer(tmp_path / "peer", keys.read_key(cluster_key))
    path, body = "/api/world/front.door", b'"unlocked"'
    try:
        a_id = (await a.get_json("/health"))[1]["id"]
        captured = peer.sign("PUT", path, body, a_id)
        assert (await peer.call(a.url, "PUT", path, body, signed=captured))[0] == 200
        # The same request, replayed to another node of the cluster.
        status, err = await peer.call(c.url, "PUT", path, body, signed=captured)
        assert status == 401 and "not for this node" in err["error"]["message"], err
        assert (await c.get_json("/api/world"))[1]["entries"] == []
        # And to the same node once it restarted (its nonce memory is gone, not the window).
        second = peer.sign("PUT", path, body, a_id)
        restarted = await _restart(a, tmp_path / "restarted")
        try:
            status, err = await peer.call(restarted.url, "PUT", path, body, signed=second)
            assert status == 401 and "before this node (re)started" in err["error"]["message"]
            assert (await restarted.get_json(path))[1]["version"] == 1
        finally:
            await restarted.stop()
    finally:
        await peer.close()


async def test_a_rogue_record_for_a_trusted_id_changes_nothing_the_edge_shows(
        lan, lan_node, cluster_key):
    core = await lan_node("a", "core", cluster_key, tools={"serve": True},
                          world={"mode": "local", "serve": True})
    edge = await lan_node("b", "edge", cluster_key, world={"mode": "remote"})
    real = await wait_for(lambda: _peer(edge, "core-a", trusted=True), what="core-a trusted")
    await wait_for(lambda: _settled(edge), what="the edge's view to settle")
    before = {k: real[k] for k in SHOWN}
    # A record with the core's id from another address, claiming other roles and no load.
    azc = AsyncZeroconf(interfaces=[lan.host_addr])
    info = AsyncServiceInfo(
        SERVICE_TYPE, f"core-a-2.{SERVICE_TYPE}", port=free_port(), server="evil.local.",
        parsed_addresses=[lan.host_addr],
        properties={"id": real["id"], "tier": "edge", "roles": "none", "models": "evil",
                    "v": "9", "load": "0/64", "kf": real["kf"]})
    try:
        await (await azc.async_register_service(info))
        await wait_for(lambda: _logged(edge, f"peer {real['id']} was announced at "),
                       what="the edge to try the announced address")
        now = next(p for p in await edge.peers() if p["id"] == real["id"])
        assert {k: now[k] for k in SHOWN} == before
        assert [p["name"] for p in await edge.peers(role="world")] == ["core-a"]
        # The edge's world still goes to the real core.
        async with edge.session() as s, s.put(edge.url + "/api/world/hall", json="on") as r:
            assert r.status == 200, await r.text()
        assert (await core.get_json("/api/world/hall"))[1]["value"] == "on"
    finally:
        await azc.async_close()
    now = next(p for p in await edge.peers() if p["id"] == real["id"])
    assert {k: now[k] for k in SHOWN} == before


async def test_a_revoked_node_is_refused_by_the_others_without_rekeying(
        lan, lan_node, cluster_key, tmp_path):
    core = await lan_node("a", "core", cluster_key, world={"mode": "local", "serve": True})
    edge = await lan_node("b", "edge", cluster_key, world={"mode": "remote"})
    other = await lan_node("c", "edge", cluster_key)
    await wait_for(lambda: _peer(edge, "core-a", trusted=True), what="core-a trusted by b")
    await wait_for(lambda: _peer(other, "core-a", trusted=True), what="core-a trusted by c")
    edge_id = (await edge.get_json("/health"))[1]["id"]
    # `sudo hybrid-agent cluster revoke NODE` on the core, by name.
    out = lan.run("a", sys.executable, "-m", "appliance.cli", "cluster", "revoke", "edge-b",
                  "--config", str(core.proc.config_path),
                  "--url", f"http://127.0.0.1:{core.proc.port}").stdout
    assert f"revoked node {edge_id}" in out, out
    # The core refuses the revoked edge; the other edge learns of it through its probes.
    await wait_for(lambda: _peer(edge, "core-a", trusted=False), timeout=30,
                   what="the revoked edge to lose the core")
    await wait_for(lambda: _logged(other, "1 node(s) revoked"), timeout=30,
                   what="the revocation to reach edge-c")
    _, st = await core.get_json("/api/status")
    assert st["components"]["security"]["revoked_nodes"] == 1
    # The other nodes still trust each other: nobody was re-keyed.
    assert await _peer(other, "core-a", trusted=True)


# ---------------------------------------------------------------- helpers


def _any_client(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """The rogue accepts anybody (it wants requests)."""
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _restart(node: LanNode, tmp: Path) -> LanNode:
    """Stop the node's daemon and start it again on the same state, port and key."""
    await node.stop()
    tmp.mkdir()
    proc = DaemonProcess(tmp, node.proc.config, netns=node.proc.netns)
    await proc.start()
    return LanNode(proc, node.addr)


async def _agent_turn(edge, text: str) -> list[tuple[str, Any]]:
    """One /api/chat turn of the edge's runner agent; its SSE events in order."""
    timeout = aiohttp.ClientTimeout(total=clients.CHAT_TIMEOUT_S)
    async with edge.session(timeout=timeout) as s, s.post(
            edge.url + "/api/chat", json={"text": text, "agent": "runner"}) as r:
        assert r.status == 200, await r.text()
        return await read_events(r)


async def _served(node) -> dict[tuple[str, str], float]:
    """The node's successful (2xx) requests per (route, method), from its /metrics."""
    async with node.session() as s, s.get(node.url + "/metrics") as r:
        text = await r.text()
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hybrid_agent_http_requests_total" \
                    and sample.labels["status"].startswith("2"):
                key = (sample.labels["route"], sample.labels["method"])
                counts[key] = counts.get(key, 0) + sample.value
    return counts


async def _peer(edge, name: str, *, trusted: bool):
    p = next((p for p in await edge.peers() if p["name"] == name), None)
    return p if p and p["trusted"] == trusted and p["healthy"] == trusted else None


async def _settled(edge) -> bool:
    """Two looks at the peers a probe apart agree on everything shown (load included)."""
    first = await edge.peers()
    await _sleep_probe()
    return json.dumps([{k: p[k] for k in SHOWN} for p in first]) == json.dumps(
        [{k: p[k] for k in SHOWN} for p in await edge.peers()])


async def _sleep_probe() -> None:
    import asyncio

    await asyncio.sleep(2.5)


async def _refused(edge, rogue_id: str):
    p = next((p for p in await edge.peers() if p["id"] == rogue_id), None)
    return p if p and p["problem"] else None


async def _logged(node: LanNode, text: str) -> bool:
    return text in node.proc.log_path.read_text(errors="replace")

