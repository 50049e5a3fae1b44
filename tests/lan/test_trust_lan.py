"""Trust on the namespace LAN: a rogue advertiser gets nothing; bad signatures get 401."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from appliance.discovery.txt import SERVICE_TYPE
from appliance.security import keys
from appliance.security.challenge import CHALLENGE_PATH
from appliance.security.signing import Signer
from tests.lan import clients
from tests.lan.waiting import wait_for
from tests.support.daemon import free_port
from tests.support.sse import read_events

pytestmark = pytest.mark.lan

PROBE_PATHS = {"/health", CHALLENGE_PATH}
RUNNER_AGENT = {"max_steps": 1, "max_tokens": 48,
                "experts": {"runner": {"system_prompt": "Run shell commands with the shell tool.",
                                       "tools": ["shell"], "tool_choice": "required"}}}


@pytest.mark.model
async def test_a_rogue_advertiser_is_listed_untrusted_and_gets_no_request(
        lan, lan_node, cluster_key, models_dir):
    core = await lan_node("a", "core", cluster_key, node={"models_dir": str(models_dir)},
                          llm={"mode": "local", "serve": True, "slots": 1, "context": 2048},
                          tools={"serve": True}, world={"mode": "local", "serve": True})
    edge = await lan_node("b", "edge", cluster_key, llm={"mode": "remote"},
                          world={"mode": "remote"}, tools={"enabled": ["shell"]},
                          agent=RUNNER_AGENT)
    real = await wait_for(lambda: _peer(edge, "core-a", trusted=True), what="core-a trusted")
    _, status = await core.get_json("/api/status")
    assert set(status["roles"]) >= {"llm", "tools", "world"}, status["roles"]

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
        rogue = await wait_for(lambda: _challenged(edge, seen, rogue_id),
                               what="the edge to list and challenge the rogue")
        assert rogue["trusted"] is False and rogue["healthy"] is False
        assert "could not prove" in rogue["problem"]
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

        # The trusted core received each of them; the rogue only ever saw probes.
        served = await _served(core)
        assert served[("/v1/chat/completions", "POST")] >= 2  # the chat and the agent's step
        assert served.get(("/api/tools/{name}", "POST"), 0) >= 1, (served, result)
        assert served[("/api/world/{key}", "PUT")] >= 1
        assert set(seen) <= PROBE_PATHS, f"the rogue was sent {set(seen) - PROBE_PATHS}"
    finally:
        await azc.async_close()
        await runner.cleanup()


async def _agent_turn(edge, text: str) -> list[tuple[str, Any]]:
    """One /api/chat turn of the edge's runner agent; its SSE events in order."""
    timeout = aiohttp.ClientTimeout(total=clients.CHAT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as s, s.post(
            edge.url + "/api/chat", json={"text": text, "agent": "runner"}) as r:
        assert r.status == 200, await r.text()
        return await read_events(r)


async def _served(node) -> dict[tuple[str, str], float]:
    """The node's successful (2xx) requests per (route, method), from its /metrics."""
    timeout = aiohttp.ClientTimeout(total=clients.CHAT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as s, s.get(node.url + "/metrics") as r:
        text = await r.text()
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hybrid_agent_http_requests_total" \
                    and sample.labels["status"].startswith("2"):
                key = (sample.labels["route"], sample.labels["method"])
                counts[key] = counts.get(key, 0) + sample.value
    return counts


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
