"""Trust on the namespace LAN: a rogue advertiser gets nothing; bad signatures get 401."""

from __future__ import annotations

import secrets

import aiohttp
import pytest
from aiohttp import web
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from appliance.discovery.txt import SERVICE_TYPE
from appliance.security import keys
from appliance.security.challenge import CHALLENGE_PATH
from appliance.security.signing import Signer
from tests.lan.waiting import wait_for
from tests.support.daemon import free_port

pytestmark = pytest.mark.lan

PROBE_PATHS = {"/health", CHALLENGE_PATH}


async def test_a_rogue_advertiser_is_listed_untrusted_and_gets_no_request(
        lan, lan_node, cluster_key):
    core = await lan_node("a", "core", cluster_key)
    edge = await lan_node("b", "edge", cluster_key)
    await wait_for(lambda: _peer(edge, "core-a", trusted=True), what="core-a trusted")
    _, status = await core.get_json("/api/status")
    real = await _peer(edge, "core-a", trusted=True)

    # The rogue: a web server that answers like a node but cannot prove the key...
    seen: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.path)
        if request.path == "/health":
            return web.json_response({"status": "ok", "ready": True, "id": rogue_id})
        if request.path == CHALLENGE_PATH:
            return web.json_response({"id": rogue_id, "proof": "0" * 64})
        return web.json_response({"stolen": True})

    rogue_id = secrets.token_hex(16)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, lan.host_addr, port).start()
    # ...advertised with plain python-zeroconf, copying a real core's TXT (even its kf).
    azc = AsyncZeroconf(interfaces=[lan.host_addr])
    info = AsyncServiceInfo(
        SERVICE_TYPE, f"rogue-core.{SERVICE_TYPE}", port=port, server="rogue-core.local.",
        parsed_addresses=[lan.host_addr],
        properties={"id": rogue_id, "tier": "core", "roles": ",".join(status["roles"]),
                    "models": "", "v": real["version"], "load": "0/64", "kf": real["kf"]})
    try:
        await (await azc.async_register_service(info))
        rogue = await wait_for(lambda: _challenged(edge, seen, rogue_id),
                               what="the edge to list and challenge the rogue")
        assert rogue["trusted"] is False and rogue["healthy"] is False
        assert "could not prove" in rogue["problem"]
        for role in status["roles"]:
            assert [p["name"] for p in await edge.peers(role=role)] == ["core-a"]
        assert set(seen) <= PROBE_PATHS, f"the rogue was sent {set(seen) - PROBE_PATHS}"
    finally:
        await azc.async_close()
        await runner.cleanup()


async def test_unsigned_wrongly_signed_and_replayed_requests_get_401(lan, lan_node, cluster_key):
    core = await lan_node("a", "core", cluster_key)
    keyless = await lan_node("c", "core", None)
    key = keys.read_key(cluster_key)
    path = "/api/world/entries/lan-test"
    async with aiohttp.ClientSession() as s:
        async def call(node, headers=None, *, body=b"", method="GET", p=path):
            async with s.request(method, node.url + p, data=body or None,
                                 headers=headers or {}) as r:
                return r.status, await r.json(content_type=None)

        status, err = await call(core)
        assert status == 401 and err["error"]["code"] == "bad_signature"
        assert "not signed" in err["error"]["message"]
        for protected in ("/v1/models", "/api/tools/list"):
            assert (await call(core, p=protected))[0] == 401
        wrong = Signer(keys.generate_key()).sign_headers("GET", path, b"")
        status, err = await call(core, wrong)
        assert status == 401 and "wrong signature" in err["error"]["message"]

        good = Signer(key).sign_headers("GET", path, b"")
        status, _ = await call(core, good)
        assert status != 401
        status, err = await call(core, good)
        assert status == 401 and "replayed" in err["error"]["message"]

        signed_body = Signer(key).sign_headers("PUT", path, b'{"value": 1}')
        status, err = await call(core, signed_body, method="PUT", body=b'{"value": 666}')
        assert status == 401 and "wrong signature" in err["error"]["message"]

        # A node without the key serves protected paths to loopback only.
        status, err = await call(keyless, Signer(key).sign_headers("GET", path, b""))
        assert status == 401 and err["error"]["code"] == "no_cluster_key"
        _, st = await keyless.get_json("/api/status")
        assert "NO CLUSTER KEY" in st["status"]


async def _peer(edge, name: str, *, trusted: bool):
    p = next((p for p in await edge.peers() if p["name"] == name), None)
    return p if p and p["trusted"] == trusted and p["healthy"] == trusted else None


async def _challenged(edge, seen: list[str], rogue_id: str):
    p = next((p for p in await edge.peers() if p["id"] == rogue_id), None)
    return p if p and CHALLENGE_PATH in seen and p["problem"] else None
