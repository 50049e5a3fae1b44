"""A real daemon's key handling over loopback: challenge answers over the node link, no-key
status, loopback pass, a world-readable key warned about, the user's own HTTPS certificate."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest

from appliance.net.challenge import challenge_peer
from appliance.net.http1 import Pool
from appliance.security import certs, keys
from appliance.security.challenge import CHALLENGE_PATH, check_proof
from appliance.security.errors import ChallengeError
from appliance.security.webcert import WEB_CERT_FILE, WEB_KEY_FILE, create_web_cert
from tests.support.nodelink import node_tls


async def test_daemon_proves_its_key_and_a_different_key_fails(daemon_factory, tmp_path):
    key_file = tmp_path / "cluster.key"
    key = keys.create_key_file(key_file)
    d = await daemon_factory(security={"cluster_key_file": str(key_file)})
    url = f"https://127.0.0.1:{d.port}"
    _, health = await d.get_json("/health")
    ours = node_tls(tmp_path / "ours", key)
    pool = Pool(node_tls=lambda: ours)
    try:
        answer = await challenge_peer(pool, url, key, 5.0, expected_peer=health["id"])
        assert answer["id"] == health["id"]
        assert answer["kf"] == keys.fingerprint(key)
        # Expecting another node at that address fails in the handshake (its name is checked).
        with pytest.raises(ChallengeError, match="Hostname mismatch"):
            await challenge_peer(pool, url, key, 5.0, expected_peer="f" * 32)
    finally:
        await pool.close()
    other = keys.generate_key()
    theirs = node_tls(tmp_path / "theirs", other)
    pool = Pool(node_tls=lambda: theirs)
    try:
        with pytest.raises(ChallengeError, match="not endorsed by this cluster's key"):
            await challenge_peer(pool, url, other, 5.0)
    finally:
        await pool.close()


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
    assert str(tmp_path) not in str(body), "a key path in /api/status"
    assert any(line.startswith("STATUS=") and "NO CLUSTER KEY" in line for line in d.notify.lines())
    async with aiohttp.ClientSession() as s:
        # Loopback callers pass the guard unsigned: whatever answers, it is not the 401.
        async with s.get(d.url + "/v1/models") as r:
            assert r.status != 401
        async with s.post(d.url + CHALLENGE_PATH, json={"nonce": "ab" * 16}) as r:
            assert r.status == 503
            assert (await r.json())["error"]["code"] == "no_cluster_key"
    assert check_proof(b"k" * 32, "ab" * 16, "id", "nothex") is False


async def test_a_key_others_may_read_is_used_with_a_warning(daemon_factory, tmp_path):
    key_file = tmp_path / "cluster.key"
    keys.create_key_file(key_file)
    key_file.chmod(0o644)
    d = await daemon_factory(security={"cluster_key_file": str(key_file)})
    _, body = await d.get_json("/api/status")
    assert body["components"]["security"]["has_key"] is True
    assert "mode 0644: other users of the box may read it" in d.log()


async def _served_certificate(port: int) -> bytes:
    """The certificate the one port shows a browser asking for the box by name (DER)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # looked at, not trusted
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                              server_hostname="localhost")
    try:
        der: bytes = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return der
    finally:
        writer.close()


async def test_the_users_own_certificate_is_what_browsers_get(daemon_factory, tmp_path):
    mine = tmp_path / "mine"
    cert_path = create_web_cert(mine, hostname="my-own-box")
    d = await daemon_factory(http={"tls_cert": str(cert_path),
                                   "tls_key": str(mine / WEB_KEY_FILE)})
    cert = certs.load_cert(cert_path.read_bytes())
    assert await _served_certificate(d.port) == cert.public_bytes(certs.serialization.Encoding.DER)
    _, status = await d.get_json("/api/status")
    shown = status["components"]["security"]
    assert shown["https_fingerprint"] == certs.sha256_fingerprint(cert)
    assert not (d.state_dir / "tls" / WEB_CERT_FILE).exists()  # none of its own was made


async def test_a_certificate_and_key_that_do_not_match_are_named_and_loopback_still_works(
        daemon_factory, tmp_path):
    key_file = tmp_path / "cluster.key"
    keys.create_key_file(key_file)
    cert_path = create_web_cert(tmp_path / "one")
    create_web_cert(tmp_path / "two")
    d = await daemon_factory(security={"cluster_key_file": str(key_file)},
                             http={"tls_cert": str(cert_path),
                                   "tls_key": str(tmp_path / "two" / WEB_KEY_FILE)})
    status_code, status = await d.get_json("/api/status")  # plain HTTP on loopback
    assert status_code == 200
    problem = status["components"]["security"]["problem"]
    assert "no HTTPS for browsers" in problem and "do not load together" in problem
    assert str(tmp_path) not in problem  # no paths in what the LAN may read
    assert status["components"]["security"]["https_fingerprint"] is None
