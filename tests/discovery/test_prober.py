"""The prober against a real server on loopback over the node link: health, trust, facts
from the authenticated answer, moved addresses proved first, backoff."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from appliance.config import DiscoveryConfig
from appliance.discovery.browse import Announcement
from appliance.discovery.prober import MAX_BACKOFF_S, STARTING_RETRY_S, Prober
from appliance.discovery.registry import PeerRegistry
from appliance.discovery.txt import SERVICE_TYPE, parse_txt
from appliance.net.http1 import Pool
from appliance.security.challenge import CHALLENGE_PATH, prove
from appliance.security.keys import generate_key
from tests.support.daemon import free_port
from tests.support.nodelink import node_tls, tls_site

PEER_ID = "7" * 32


class FakePeer:
    """A hand-written stand-in node: /health and the challenge, with switchable answers."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.health_status = 200
        self.health_id = PEER_ID
        self.app = web.Application()
        self.app.router.add_get("/health", self.health)
        self.app.router.add_post(CHALLENGE_PATH, self.challenge)

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"id": self.health_id, "ready": self.health_status == 200},
                                 status=self.health_status)

    async def challenge(self, request: web.Request) -> web.Response:
        nonce = (await request.json())["nonce"]
        return web.json_response({"id": PEER_ID, "roles": "llm,world", "models": "m1",
                                  "tier": "core", "load": "1/4", "name": "real-core",
                                  "proof": prove(self.key, nonce, PEER_ID)})


async def serve(app: web.Application, tls) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, shutdown_timeout=0)
    await runner.setup()
    port = free_port()
    await tls_site(runner, tls, port)
    return runner, port


def announce(reg: PeerRegistry, port: int, **txt: str):
    return reg.announce(Announcement(
        service_name=f"p.{SERVICE_TYPE}", instance="p", addresses=("127.0.0.1",), port=port,
        txt=parse_txt({"id": PEER_ID, "roles": "llm", **txt})))


@pytest.fixture
async def setup(tmp_path):
    key = generate_key()
    fake = FakePeer(key)
    runner, port = await serve(fake.app, node_tls(tmp_path / "peer", key, PEER_ID))
    reg = PeerRegistry()
    ours = node_tls(tmp_path / "ours", key)
    pool = Pool(node_tls=lambda: ours)
    prober = Prober(reg, pool, lambda: key, interval_s=2.0, timeout_s=1.0)
    peer = announce(reg, port)
    yield fake, prober, peer, runner
    await prober.close()
    await pool.close()
    await runner.cleanup()


async def test_a_peer_that_proves_the_key_becomes_trusted_and_healthy(setup):
    _, prober, peer, _ = setup
    await prober.probe_once(peer)
    assert peer.trusted and peer.healthy and peer.rtt_s is not None
    assert prober.registry.select("llm") == [peer]


async def test_a_trusted_peers_facts_are_those_of_its_authenticated_answer(setup):
    _, prober, peer, _ = setup
    assert peer.roles == ["llm"]  # what the mDNS record said
    await prober.probe_once(peer)
    assert peer.roles == ["llm", "world"] and peer.models == ["m1"] and peer.tier == "core"
    assert peer.name == "p" and peer.load == 0.25  # (the instance name stays: unique on the LAN)
    # A later record with other facts changes nothing; it only asks for a fresh proof.
    woken = []
    prober.registry.on_change = woken.append
    announce(prober.registry, peer.port, roles="none", load="0/64")
    assert peer.roles == ["llm", "world"] and peer.load == 0.25 and woken == [PEER_ID]


async def test_another_address_for_a_trusted_peer_is_adopted_only_once_proved_there(
        setup, tmp_path):
    fake, prober, peer, _ = setup
    await prober.probe_once(peer)
    url = peer.url
    # A rogue without the key announces the peer's id at its own address: nothing changes.
    rogue, rogue_port = await serve(FakePeer(fake.key).app,
                                    node_tls(tmp_path / "rogue", generate_key(), PEER_ID))
    try:
        announce(prober.registry, rogue_port)
        assert peer.candidate_url.endswith(f":{rogue_port}") and peer.url == url
        await prober.probe_once(peer)
        assert peer.url == url and peer.trusted and peer.healthy and not peer.candidate_url
    finally:
        await rogue.cleanup()
    # The real peer moving to a new port is adopted once it proves itself there.
    moved, moved_port = await serve(FakePeer(fake.key).app,
                                    node_tls(tmp_path / "peer", fake.key, PEER_ID))
    try:
        announce(prober.registry, moved_port)
        await prober.probe_once(peer)
        assert peer.url.endswith(f":{moved_port}") and peer.trusted and peer.healthy
    finally:
        await moved.cleanup()


async def test_a_peer_whose_certificate_another_key_endorsed_stays_untrusted(tmp_path):
    key = generate_key()
    runner, port = await serve(FakePeer(key).app, node_tls(tmp_path / "p", generate_key(),
                                                            PEER_ID))
    reg = PeerRegistry()
    ours = node_tls(tmp_path / "ours", key)
    pool = Pool(node_tls=lambda: ours)
    prober = Prober(reg, pool, lambda: key, interval_s=2.0, timeout_s=1.0)
    peer = announce(reg, port)
    try:
        await prober.probe_once(peer)
        assert not peer.trusted and not peer.healthy
        assert "/health failed" in peer.problem and "certificate" in peer.problem
    finally:
        await prober.close()
        await pool.close()
        await runner.cleanup()


async def test_a_peer_with_another_key_stays_untrusted(setup):
    fake, prober, peer, _ = setup
    fake.key = generate_key()
    await prober.probe_once(peer)
    assert not peer.trusted and not peer.healthy
    assert "could not prove" in peer.problem


async def test_health_answering_as_another_node_marks_the_peer_down(setup):
    fake, prober, peer, _ = setup
    await prober.probe_once(peer)
    fake.health_id = "x" * 32
    await prober.probe_once(peer)
    assert not peer.trusted and not peer.healthy and "different node" in peer.problem


async def test_a_starting_peer_is_retried_soon_without_backoff(setup):
    fake, prober, peer, _ = setup
    fake.health_status = 503
    peer.failures = 3
    await prober.probe_once(peer)
    assert not peer.healthy and peer.failures == 0
    assert prober._delay(peer) == STARTING_RETRY_S


async def test_a_dead_peer_loses_trust_and_is_retried_with_backoff(setup):
    _, prober, peer, runner = setup
    await prober.probe_once(peer)
    assert peer.trusted
    await runner.cleanup()
    delays = []
    for _ in range(6):
        await prober.probe_once(peer)
        delays.append(prober._delay(peer))
    assert not peer.trusted and not peer.healthy
    assert delays == sorted(delays) and delays[0] == 2.0 and delays[-1] == MAX_BACKOFF_S


async def test_a_peer_whose_health_hangs_is_marked_down_after_the_probe_timeout(tmp_path):
    """/health answers only after probe_once returned: the timeout, not the peer, ended it."""
    key = generate_key()
    release = asyncio.Event()
    entered = asyncio.Event()

    async def hanging_health(request: web.Request) -> web.Response:
        entered.set()
        await release.wait()  # set by the test only after probe_once returned
        return web.json_response({"id": PEER_ID, "ready": True})

    app = web.Application()
    app.router.add_get("/health", hanging_health)
    runner, port = await serve(app, node_tls(tmp_path / "peer", key, PEER_ID))
    reg = PeerRegistry()
    ours = node_tls(tmp_path / "ours", key)
    pool = Pool(node_tls=lambda: ours)
    defaults = DiscoveryConfig()
    assert defaults.probe_timeout_s == 1.0  # the documented "1 s timeout"
    prober = Prober(reg, pool, lambda: key, interval_s=defaults.probe_interval_s,
                    timeout_s=defaults.probe_timeout_s)
    peer = announce(reg, port)
    assert peer is not None
    peer.healthy = peer.trusted = True  # it was fine until now
    try:
        await prober.probe_once(peer)
        assert entered.is_set(), "the probe never reached the peer's /health"
        assert not release.is_set()  # the handler was still waiting: only the timeout ended it
        assert not peer.healthy and not peer.trusted
        assert peer.failures == 1 and "/health failed" in peer.problem
        assert reg.select("llm") == []
    finally:
        release.set()
        await prober.close()
        await pool.close()
        await runner.cleanup()
