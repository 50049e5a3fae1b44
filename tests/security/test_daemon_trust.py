"""A real daemon's key handling over loopback: challenge answers, no-key status, loopback pass."""

from __future__ import annotations

import aiohttp

from appliance.security import keys
from appliance.security.challenge import CHALLENGE_PATH, challenge_peer, check_proof
from appliance.security.errors import ChallengeError


async def test_daemon_proves_its_key_and_a_different_key_fails(daemon_factory, tmp_path):
    key_file = tmp_path / "cluster.key"
    key = keys.create_key_file(key_file)
    d = await daemon_factory(security={"cluster_key_file": str(key_file)})
    async with aiohttp.ClientSession() as s:
        answer = await challenge_peer(s, d.url, key, 2.0)
        _, health = await d.get_json("/health")
        assert answer["id"] == health["id"]
        assert answer["kf"] == keys.fingerprint(key)
        try:
            await challenge_peer(s, d.url, keys.generate_key(), 2.0)
        except ChallengeError as exc:
            assert "could not prove" in str(exc)
        else:
            raise AssertionError("a different key was accepted")


async def test_challenge_rejects_bad_nonces_with_400(daemon_factory, tmp_path):
    key_file = tmp_path / "cluster.key"
    keys.create_key_file(key_file)
    d = await daemon_factory(security={"cluster_key_file": str(key_file)})
    async with aiohttp.ClientSession() as s:
        for body in ({"nonce": "short"}, {"nonce": 5}, {}, ["x"]):
            async with s.post(d.url + CHALLENGE_PATH, json=body) as r:
                err = await r.json()
                assert r.status == 400, body
                assert err["error"]["param"] == "nonce"
        async with s.post(d.url + CHALLENGE_PATH, data=b"{" * 5000,
                          headers={"Content-Type": "application/json"}) as r:
            assert r.status == 413


async def test_a_daemon_without_key_says_so_and_still_serves_loopback(daemon_factory, tmp_path):
    d = await daemon_factory(security={"cluster_key_file": str(tmp_path / "missing.key")})
    _, body = await d.get_json("/api/status")
    assert "NO CLUSTER KEY" in body["status"]
    assert body["components"]["security"]["has_key"] is False
    assert any(line.startswith("STATUS=") and "NO CLUSTER KEY" in line for line in d.notify.lines())
    async with aiohttp.ClientSession() as s:
        # Loopback callers pass the guard unsigned: whatever answers, it is not the 401.
        async with s.get(d.url + "/v1/models") as r:
            assert r.status != 401
        async with s.post(d.url + CHALLENGE_PATH, json={"nonce": "ab" * 16}) as r:
            assert r.status == 503
            assert (await r.json())["error"]["code"] == "no_cluster_key"
    assert check_proof(b"k" * 32, "ab" * 16, "id", "nothex") is False
