"""Loopback is trusted only with a matching Host and Origin: DNS rebinding, cross-site posts
and foreign WebSockets are refused on the box itself (the LAN's side: tests/lan)."""

from __future__ import annotations

import aiohttp
import pytest

from appliance.web.origin import BoxNames, split_host


async def test_rebinding_cross_site_and_form_posts_are_refused_on_loopback(daemon_factory):
    d = await daemon_factory(world={"mode": "local"})
    async with aiohttp.ClientSession() as s:
        # DNS rebinding: the attacker's name pointed at 127.0.0.1.
        for method in ("GET", "PUT"):
            async with s.request(method, d.url + "/api/world/front.door", json="unlocked",
                                 headers={"Host": "attacker.example:8700"}) as r:
                assert r.status == 421, method
        # A page on another site posting to the box through the browser on it.
        evil = {"Origin": "http://evil.example"}
        for path, body in (("/api/chat", {"text": "SET front.door=unlocked"}),
                           ("/v1/chat/completions", {"model": "default", "messages": []}),
                           ("/api/world/front.door", "unlocked")):
            async with s.post(d.url + path, json=body, headers=evil) as r:
                assert r.status == 403, path
                assert (await r.json())["error"]["code"] == "cross_site"
        # Even with the box's own Origin, text/plain (a form's kind of post) is not JSON.
        own = {"Origin": d.url}
        for path in ("/api/chat", "/v1/chat/completions"):
            async with s.post(d.url + path, data='{"text": "hi"}',
                              headers={**own, "Content-Type": "text/plain"}) as r:
                assert r.status == 415, path
        async with s.put(d.url + "/api/world/k", json=1, headers=own) as r:
            assert r.status == 200
        # WebSockets carry their page's Origin: a foreign one is refused, every time.
        for _ in range(30):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await s.ws_connect(d.url + "/api/voice", headers=evil)
            assert refused.value.status == 403
        # The box's own CLI: no Origin, a loopback Host.
        async with s.get(d.url + "/api/status") as r:
            assert r.status == 200


def test_host_names_and_addresses():
    names = BoxNames(["kitchen", "kitchen.local", "Kitchen-1a2b3c4d.local."])
    assert names.allows("kitchen.local:8700", "10.0.0.5")
    assert names.allows("KITCHEN-1A2B3C4D.LOCAL", None)
    assert names.allows("localhost:8700", None) and names.allows("[::1]:8700", None)
    assert names.allows("10.0.0.5:8700", "10.0.0.5")
    assert names.allows("10.0.0.5", "::ffff:10.0.0.5")
    assert not names.allows("10.0.0.6:8700", "10.0.0.5")
    assert not names.allows("kitchen.evil.example", "10.0.0.5")
    assert not names.allows("", "10.0.0.5") and not names.allows("[::1", None)
    assert split_host("[fe80::1%25eth0]:8700") == ("fe80::1", "8700")
    assert split_host("a:b") == ("", "")


def test_who_may_use_what():
    from appliance.web.access import LOOPBACK, SCRAPER, STRANGER, Caller, refusal

    device, peer = Caller("device", "d1", "phone"), Caller("peer", "ab" * 16)
    assert refusal(LOOPBACK, "/api/devices") is None
    assert refusal(STRANGER, "/health") is None and refusal(STRANGER, "/static/app.js") is None
    assert refusal(STRANGER, "/api/status")[0] == 401
    assert refusal(SCRAPER, "/metrics") is None and refusal(SCRAPER, "/api/status")[0] == 401
    assert refusal(device, "/api/chat") is None and refusal(device, "/v1/models") is None
    assert refusal(device, "/api/tools/shell")[0] == 403
    assert refusal(device, "/api/devices")[0] == 403
    assert refusal(peer, "/api/world/k") is None and refusal(peer, "/api/chat")[0] == 403
    assert device.owner == "device:d1" and LOOPBACK.owner == "loopback"


async def test_a_loopback_session_pairs_lists_and_revokes_devices(daemon_factory):
    # What the page's "pair a device" button does on the box itself.
    d = await daemon_factory()
    own = {"Origin": d.url}
    async with aiohttp.ClientSession(headers=own) as s:
        async with s.post(d.url + "/api/devices", json={"name": "kitchen-tablet"}) as r:
            paired = await r.json()
            assert r.status == 200, paired
        assert paired["expires_s"] > 0 and paired["https_fingerprint"].count(":") == 31
        async with s.post(d.url + "/api/devices", json={"name": ""}) as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "name"
        async with s.post(d.url + "/api/signin",
                          json={"code": paired["code"], "bearer": True}) as r:
            signed_in = await r.json()
            assert r.status == 200, signed_in
        assert signed_in["device"]["name"] == "kitchen-tablet" and signed_in["token"]
        async with s.get(d.url + "/api/devices") as r:
            listed = [dev["name"] for dev in (await r.json())["devices"]]
        assert listed == ["kitchen-tablet"]
        async with s.delete(d.url + "/api/devices/kitchen-tablet") as r:
            assert r.status == 200 and (await r.json())["revoked"]["name"] == "kitchen-tablet"
        async with s.delete(d.url + "/api/devices/kitchen-tablet") as r:
            assert r.status == 404
        async with s.get(d.url + "/api/devices") as r:
            assert (await r.json())["devices"] == []
