"""Health probes and trust checks of peers: one task per peer.

``/health`` every ``interval_s`` (``timeout_s`` each) decides liveness; then
the peer is challenged (appliance.security.challenge) over the node link, and
its answer, authenticated by the peer's TLS certificate and its proof of the
cluster key, is where a trusted peer's facts come from: name, tier, roles,
models, load, and the digest of its revocation list (a newer list is fetched
and merged). An mDNS record that moved a known peer to another address is a
``candidate``: it is proved there first and changes nothing until it passes.
Dead peers are retried with exponential backoff; a starting peer (503) is
retried quickly so it is usable soon after READY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from appliance import jsonbounds
from appliance.discovery.registry import Peer, PeerRegistry
from appliance.net.challenge import challenge_peer
from appliance.net.http1 import Origin, Pool, ProtocolError
from appliance.net.text import clean
from appliance.security.errors import ChallengeError, SecurityError
from appliance.tasks import cancel_and_wait

log = logging.getLogger(__name__)

STARTING_RETRY_S = 0.2
MAX_BACKOFF_S = 15.0
MAX_HEALTH_BYTES = 16 * 1024
REVOCATIONS_PATH = "/api/cluster/revocations"
MAX_REVOCATIONS_BYTES = 1024 * 1024

Merge = Callable[[bytes], bool]
"""Takes a peer's revocation list (PEM); True when ours grew."""


class Prober:
    """Keeps every registry peer's ``healthy``, ``rtt_s``, ``trusted`` and facts current."""

    def __init__(self, registry: PeerRegistry, pool: Pool,
                 key: Callable[[], bytes | None], *, interval_s: float, timeout_s: float,
                 revocations: Callable[[], tuple[str, Merge] | None] = lambda: None) -> None:
        self.registry = registry
        self._pool = pool
        self._key = key
        self._revocations = revocations
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}

    def watch(self, peer_id: str) -> None:
        """Probe ``peer_id`` now, and from then on (starts its task if needed)."""
        wake = self._wake.setdefault(peer_id, asyncio.Event())
        wake.set()
        task = self._tasks.get(peer_id)
        if task is None or task.done():
            self._tasks[peer_id] = asyncio.get_running_loop().create_task(
                self._run(peer_id), name=f"probe-{peer_id[:8]}")

    async def close(self) -> None:
        await cancel_and_wait(list(self._tasks.values()))
        self._tasks.clear()

    async def probe_once(self, peer: Peer) -> None:
        """One health probe and challenge; updates ``peer`` in place."""
        if peer.candidate_url:
            await self._prove_candidate(peer)
        status, rtt, body = await self._health(peer.url, peer.id)
        now = time.time()
        if status == 200 and body.get("id") not in (None, peer.id):
            self._down(peer, f"/health answers as a different node {clean(body['id'], 40)!r}")
            return
        if status == 200:
            peer.rtt_s, peer.failures, peer.last_seen = rtt, 0, now
            peer.said_goodbye = False  # it is still there: whoever said goodbye was not it
            answer = await self._challenge(peer, peer.url)
            if answer is not None:
                self.registry.apply_answer(peer, answer)
                await self._sync_revocations(peer, answer)
            peer.healthy = peer.trusted
            if peer.trusted:
                peer.problem = ""
        elif status == 503:
            peer.healthy, peer.rtt_s, peer.last_seen = False, rtt, now
            # Alive but not ready: retry soon (not with backoff) so it is usable right after READY.
            peer.failures, peer.problem = 0, "starting or stopping"
        else:
            self._down(peer, f"/health failed ({body.get('error', status)})")

    # ------------------------------------------------------------ internals

    async def _run(self, peer_id: str) -> None:
        wake = self._wake[peer_id]
        try:
            while True:
                wake.clear()
                peer = self.registry.get(peer_id)
                if peer is None:
                    return
                try:
                    await self.probe_once(peer)
                except Exception:
                    log.exception("probing %s failed", peer.url)
                delay = self._delay(peer)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
        finally:
            self._wake.pop(peer_id, None)
            self._tasks.pop(peer_id, None)

    def _delay(self, peer: Peer) -> float:
        if peer.failures:
            return min(self.interval_s * 2 ** (peer.failures - 1), MAX_BACKOFF_S)
        if not peer.healthy and peer.problem == "starting or stopping":
            return STARTING_RETRY_S
        return self.interval_s

    async def _prove_candidate(self, peer: Peer) -> None:
        """An announced new address of a known peer: adopted only when the peer proves
        itself there."""
        url, addresses, peer.candidate_url = peer.candidate_url, peer.candidate_addresses, ""
        answer = await self._challenge(peer, url, quiet=True)
        if answer is None:
            log.warning("peer %s was announced at %s but did not prove itself there; "
                        "ignored", peer.id, url)
            return
        log.info("peer %s (%s) moved from %s to %s", peer.name, peer.id, peer.url, url)
        peer.url, peer.addresses = url, addresses
        self.registry.apply_answer(peer, answer)

    async def _health(self, url: str, peer_id: str) -> tuple[int, float, dict[str, Any]]:
        start = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await self._pool.request("GET", Origin.parse(url), "/health", None, {},
                                                connect_timeout_s=self.timeout_s,
                                                peer=peer_id if _is_node_id(peer_id) else None)
                try:
                    raw = await resp.read(MAX_HEALTH_BYTES + 1)
                finally:
                    resp.release()
        except (OSError, TimeoutError, ProtocolError, ValueError, SecurityError) as exc:
            return 0, 0.0, {"error": str(exc) or type(exc).__name__}
        rtt = time.monotonic() - start
        try:
            body = jsonbounds.loads(raw) if len(raw) <= MAX_HEALTH_BYTES else {}
        except ValueError:
            body = {}
        return resp.status, rtt, body if isinstance(body, dict) else {}

    async def _challenge(self, peer: Peer, url: str, quiet: bool = False
                         ) -> dict[str, Any] | None:
        key = self._key()
        if key is None:
            peer.trusted, peer.problem = False, "this node has no cluster key"
            return None
        expected = peer.id if _is_node_id(peer.id) else None
        try:
            answer = await challenge_peer(self._pool, url, key, self.timeout_s, expected)
        except ChallengeError as exc:
            if not quiet:
                if peer.trusted:
                    log.warning("peer %s (%s) is no longer trusted: %s", peer.name, url, exc)
                peer.trusted, peer.problem = False, str(exc)
            return None
        if answer["id"] != peer.id:
            if not quiet:
                peer.trusted = False
                peer.problem = "proved the key under a different id than it announced"
            return None
        if not quiet:
            if not peer.trusted:
                log.info("peer %s (%s, %s) proved the cluster key", peer.name, url, peer.tier)
            peer.trusted = True
        return answer

    async def _sync_revocations(self, peer: Peer, answer: dict[str, Any]) -> None:
        """Fetch and merge the peer's revocation list when its digest differs from ours."""
        ours = self._revocations()
        theirs = answer.get("revoked")
        if ours is None or not isinstance(theirs, str) or theirs == ours[0]:
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await self._pool.request("GET", Origin.parse(peer.url), REVOCATIONS_PATH,
                                                None, {}, connect_timeout_s=self.timeout_s,
                                                peer=peer.id)
                try:
                    pem = await resp.read(MAX_REVOCATIONS_BYTES + 1)
                finally:
                    resp.release()
            if resp.status == 200 and ours[1](pem):
                log.warning("took a longer revocation list from %s", peer.name)
        except (OSError, TimeoutError, ProtocolError, ValueError, SecurityError) as exc:
            log.warning("cannot take the revocation list of %s: %s", peer.name, exc)

    def _down(self, peer: Peer, problem: str) -> None:
        if peer.said_goodbye and peer.source != "static":
            log.info("peer %s (%s) said goodbye", peer.name, peer.url)
            self.registry.remove(peer.id)
            return
        if peer.healthy or peer.trusted:
            log.warning("peer %s (%s) is down: %s", peer.name, peer.url, problem)
        # Trust is re-established after an outage: whoever answers next must prove the key again.
        peer.healthy, peer.trusted, peer.problem = False, False, problem
        peer.failures += 1


def _is_node_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)
