"""The prober against a real HTTP server on loopback: health, trust, backoff."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from appliance.config import DiscoveryConfig
from appliance.discovery.browse import Announcement
from appliance.discovery.prober import MAX_BACKOFF_S, STARTING_RETRY_S, Prober
from appliance.discovery.registry import PeerRegistry
from appliance.discovery.txt import SERVICE_TYPE, parse_txt
from appliance.security.challenge import CHALLENGE_PATH, prove
from appliance.security.keys import generate_key
from tests.support.daemon import free_port

PEER_ID = "p" * 32


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
        return web.json_response({"id": PEER_ID, "proof": prove(self.key, nonce, PEER_ID)})


@pytest.fixture
async def setup():
    key = generate_key()
    fake = FakePeer(key)
    runner = web.AppRunner(fake.app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    reg = PeerRegistry()
    session = aiohttp.ClientSession()
    prober = Prober(reg, session, lambda: key, interval_s=2.0, timeout_s=1.0)
    peer = reg.announce(Announcement(
        service_name=f"p.{SERVICE_TYPE}", instance="p", addresses=("127.0.0.1",), port=port,
        txt=parse_txt({"id": PEER_ID, "roles": "llm"})))
    yield fake, prober, peer, runner
    await prober.close()
    await session.close()
    await runner.cleanup()


async def test_a_peer_that_proves_the_key_becomes_trusted_and_healthy(setup):
    _, prober, peer, _ = setup
    await prober.probe_once(peer)
    assert peer.trusted and peer.healthy and peer.rtt_s is not None
    assert prober.registry.select("llm") == [peer]


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


async def test_a_peer_whose_health_hangs_is_marked_down_after_the_probe_timeout():
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
    runner = web.AppRunner(app, shutdown_timeout=0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    reg = PeerRegistry()
    session = aiohttp.ClientSession()
    defaults = DiscoveryConfig()
    assert defaults.probe_timeout_s == 1.0  # the documented "1 s timeout"
    prober = Prober(reg, session, lambda: key, interval_s=defaults.probe_interval_s,
                    timeout_s=defaults.probe_timeout_s)
    peer = reg.announce(Announcement(
        service_name=f"p.{SERVICE_TYPE}", instance="p", addresses=("127.0.0.1",), port=port,
        txt=parse_txt({"id": PEER_ID, "roles": "llm"})))
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
        await session.close()
        await runner.cleanup()
