"""People on the namespace LAN: a stranger gets nothing but /health and the sign-in, over HTTP
and WebSocket; a device paired with `hybrid-agent devices add` gets in, only to its own
conversations, until it is revoked; rebinding and cross-site requests are refused."""

from __future__ import annotations

import json
import sys

import aiohttp
import pytest

from tests.lan.netlab import LanNode
from tests.lan.waiting import wait_for
from tests.support.nodelink import web_pin

pytestmark = [pytest.mark.lan, pytest.mark.model]

#: Every route the app mounts (and one it does not), as a stranger would try them.
ROUTES = [
    ("GET", "/metrics"), ("GET", "/api/status"), ("GET", "/api/ui"), ("GET", "/api/agents"),
    ("GET", "/api/peers"), ("POST", "/api/peers/challenge"), ("GET", "/api/cluster/revocations"),
    ("POST", "/api/chat"), ("POST", "/api/stt"), ("POST", "/api/tts"), ("GET", "/api/voice"),
    ("GET", "/api/world"), ("GET", "/api/world/events"), ("GET", "/api/world/k"),
    ("PUT", "/api/world/k"), ("DELETE", "/api/world/k"), ("GET", "/api/tools"),
    ("POST", "/api/tools/calculator"), ("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"), ("POST", "/v1/embeddings"),
    ("POST", "/v1/audio/transcriptions"), ("POST", "/v1/audio/speech"),
    ("GET", "/api/devices"), ("POST", "/api/devices"), ("DELETE", "/api/devices/x"),
    ("POST", "/api/signout"), ("GET", "/api/nothing-here"),
]
VOICE_TIMEOUT_S = 30.0


@pytest.fixture
async def box(lan, lan_node, cluster_key, models_dir) -> LanNode:
    """A box with every part that has routes: world, tools, the agent and voice."""
    return await lan_node("a", "mid", cluster_key, node={"models_dir": str(models_dir)},
                          llm={"mode": "off"}, world={"mode": "local", "serve": True},
                          tools={"serve": True}, voice={"enabled": True, "language": "en"})


def _stranger(box: LanNode, **headers: str) -> aiohttp.ClientSession:
    """Someone on the LAN who has the box's certificate but no device token."""
    return aiohttp.ClientSession(headers=headers,
                                 connector=aiohttp.TCPConnector(ssl=web_pin(box.proc.state_dir)))


async def test_a_stranger_gets_401_or_403_on_every_route_but_health_and_sign_in(box):
    async with _stranger(box) as s:
        for method, path in ROUTES:
            async with s.request(method, box.url + path, json={} if method in (
                    "POST", "PUT") else None) as r:
                body = await r.json(content_type=None)
                assert r.status in (401, 403), (method, path, r.status, body)
                if r.status == 401:
                    assert "devices add" in body["error"]["message"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(box.url + "/api/voice")
        assert refused.value.status == 401
        # What stays open: liveness, the page's shell, and the sign-in itself.
        async with s.get(box.url + "/health") as r:
            assert r.status == 200
        for path in ("/", "/static/app.js"):
            async with s.get(box.url + path) as r:
                assert r.status == 200, path
        async with s.post(box.url + "/api/signin", json={"code": "ABCD-EFGH"}) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "wrong_code"
    # Plain HTTP from the LAN is sent to HTTPS, with nothing else said.
    async with aiohttp.ClientSession() as s:
        for method, path in (("GET", "/api/status"), ("POST", "/api/chat"), ("GET", "/")):
            async with s.request(method, box.http_url + path, allow_redirects=False) as r:
                assert r.status == 308, (method, path)
                assert r.headers["Location"] == box.url + path
                assert "components" not in await r.text()


async def test_a_paired_device_gets_in_to_its_own_conversations_until_revoked(box, lan):
    code = _pair(lan, box, "anna-phone")
    async with _stranger(box) as s:
        async with s.post(box.url + "/api/signin", json={"code": code, "bearer": True}) as r:
            answer = await r.json()
            assert r.status == 200, answer
            cookie = r.headers["Set-Cookie"]
        for attribute in ("HttpOnly", "Secure", "SameSite=Strict"):
            assert attribute in cookie, cookie
        token = answer["token"]
        assert answer["device"]["name"] == "anna-phone"
        # The code works once.
        async with s.post(box.url + "/api/signin", json={"code": code}) as r:
            assert r.status == 403
    stored = (box.proc.state_dir / "devices.json").read_text()
    assert token not in stored and code.replace("-", "") not in stored  # hashed at rest

    anna = {"Authorization": f"Bearer {token}"}
    async with _stranger(box, **anna) as s:
        async with s.get(box.url + "/api/status") as r:
            assert r.status == 200
            assert str(box.proc.tmp) not in await r.text()  # no key paths to the LAN
        for path in ("/api/tools", "/api/devices"):
            async with s.get(box.url + path) as r:
                assert r.status == 403, path
        ws = await s.ws_connect(box.url + "/api/voice?conversation_id=anna-1")
        first = await ws.receive_json(timeout=VOICE_TIMEOUT_S)
        assert first["type"] == "state" and first["conversation_id"] == "anna-1"
        await ws.close()
    # Another device cannot use Anna's conversation, by chat or by voice.
    async with box.session() as other:
        async with other.post(box.url + "/api/chat",
                              json={"text": "what did I say?", "conversation_id": "anna-1"}) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "not_your_conversation"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await other.ws_connect(box.url + "/api/voice?conversation_id=anna-1")
        assert refused.value.status == 403
    # `devices list` and `devices revoke` on the box; the token stops working at once.
    listed = json.loads(lan.run("a", sys.executable, "-m", "appliance.cli", "devices", "list",
                                "--json", "--config", str(box.proc.config_path)).stdout)
    assert "anna-phone" in [d["name"] for d in listed]
    lan.run("a", sys.executable, "-m", "appliance.cli", "devices", "revoke", "anna-phone",
            "--config", str(box.proc.config_path))

    async def refused_now() -> bool:
        async with _stranger(box, **anna) as s, s.get(box.url + "/api/status") as r:
            return r.status == 401

    await wait_for(refused_now, timeout=5, what="the revoked token to be refused")


async def test_rebinding_and_cross_site_requests_are_refused(box):
    async with box.session() as s:
        # DNS rebinding: a name the attacker controls, resolving to the box.
        async with s.get(box.url + "/api/status", headers={"Host": "evil.example"}) as r:
            assert r.status == 421
        origin = {"Origin": "https://evil.example"}
        async with s.post(box.url + "/api/chat", json={"text": "hi"}, headers=origin) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "cross_site"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(box.url + "/api/voice", headers=origin)
        assert refused.value.status == 403
        # The page's own origin may; a form-style body may not reach a JSON route.
        own = {"Origin": box.url}
        async with s.put(box.url + "/api/world/k", data="1", headers={
                **own, "Content-Type": "text/plain"}) as r:
            assert r.status == 415
        async with s.put(box.url + "/api/world/k", json=1, headers=own) as r:
            assert r.status == 200


def _pair(lan, box: LanNode, name: str) -> str:
    """`sudo hybrid-agent devices add NAME` on the box; the code it shows."""
    out = lan.run("a", sys.executable, "-m", "appliance.cli", "devices", "add", name, "--json",
                  "--config", str(box.proc.config_path)).stdout
    shown = json.loads(out)
    assert shown["https_fingerprint"].count(":") == 31 and shown["spki"]
    return str(shown["code"])


async def test_a_configured_scrape_address_reads_metrics_and_nothing_else(lan, lan_node):
    # The test process's address on the LAN is the scraper (Prometheus); member b is not.
    box = await lan_node("a", "edge", None, llm={"mode": "off"},
                         http={"metrics_clients": [lan.host_addr]})
    async with _stranger(box) as scraper:
        async with scraper.get(box.url + "/metrics") as r:
            assert r.status == 200 and "http_requests_total" in await r.text()
        for path in ("/api/status", "/api/peers", "/api/agents"):
            async with scraper.get(box.url + path) as r:
                assert r.status == 401, path
    # Prometheus scrapes plain HTTP by default, so the scrape address may (docs/security.md);
    # anything else over plain HTTP is still only a redirect.
    async with aiohttp.ClientSession() as s:
        async with s.get(box.http_url + "/metrics", allow_redirects=False) as r:
            assert r.status == 200 and "http_requests_total" in await r.text()
        async with s.get(box.http_url + "/api/status", allow_redirects=False) as r:
            assert r.status == 308
    elsewhere = lan.run("b", "curl", "-s", "-k", "-o", "/dev/null", "-w", "%{http_code}",
                        box.url + "/metrics").stdout
    assert elsewhere == "401"
