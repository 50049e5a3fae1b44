"""Health probes and trust checks of peers: one task per peer.

``/health`` every ``interval_s`` (``timeout_s`` each) decides liveness; a
peer that is up but not yet trusted is challenged (appliance.security
.challenge) and becomes ``trusted`` only when it proves the cluster key
under the id it announced. Dead peers are retried with exponential backoff;
a starting peer (503) is retried quickly so it is usable soon after READY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp

from appliance import jsonbounds
from appliance.discovery.registry import Peer, PeerRegistry
from appliance.discovery.txt import clean
from appliance.security.challenge import challenge_peer
from appliance.security.errors import ChallengeError
from appliance.tasks import cancel_and_wait

log = logging.getLogger(__name__)

STARTING_RETRY_S = 0.2
MAX_BACKOFF_S = 15.0
MAX_HEALTH_BYTES = 16 * 1024
# Static peers carry no TXT record; their roles and load come from a fresh challenge this often.
STATIC_REFRESH_S = 10.0


class Prober:
    """Keeps every registry peer's ``healthy``, ``rtt_s`` and ``trusted`` current."""

    def __init__(self, registry: PeerRegistry, session: aiohttp.ClientSession,
                 key: Callable[[], bytes | None], *, interval_s: float, timeout_s: float) -> None:
        self.registry = registry
        self._session = session
        self._key = key
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
        """One health probe (and challenge when due); updates ``peer`` in place."""
        status, rtt, body = await self._health(peer.url)
        now = time.time()
        if status == 200 and body.get("id") not in (None, peer.id):
            self._down(peer, f"/health answers as a different node {clean(body['id'], 40)!r}")
            return
        if status == 200:
            peer.rtt_s, peer.failures, peer.last_seen = rtt, 0, now
            if not peer.trusted:
                await self._challenge(peer)
            elif peer.source == "static" and now - peer.refreshed_at > STATIC_REFRESH_S:
                await self._challenge(peer)
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

    async def _health(self, url: str) -> tuple[int, float, dict]:
        start = time.monotonic()
        try:
            async with self._session.get(
                    url + "/health", timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                raw = await resp.content.read(MAX_HEALTH_BYTES + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return 0, 0.0, {"error": str(exc) or type(exc).__name__}
        rtt = time.monotonic() - start
        try:
            body = jsonbounds.loads(raw) if len(raw) <= MAX_HEALTH_BYTES else {}
        except ValueError:
            body = {}
        return status, rtt, body if isinstance(body, dict) else {}

    async def _challenge(self, peer: Peer) -> None:
        key = self._key()
        if key is None:
            peer.trusted, peer.problem = False, "this node has no cluster key"
            return
        try:
            answer = await challenge_peer(self._session, peer.url, key, self.timeout_s)
        except ChallengeError as exc:
            peer.trusted, peer.problem = False, str(exc)
            log.warning("peer %s (%s) is not trusted: %s", peer.name, peer.url, exc)
            return
        if answer["id"] != peer.id:
            peer.trusted = False
            peer.problem = "proved the key under a different id than it announced"
            return
        if peer.source == "static":
            self.registry.add_static(peer.url, answer)
            peer.refreshed_at = time.time()
        if not peer.trusted:
            log.info("peer %s (%s, %s) proved the cluster key", peer.name, peer.url, peer.tier)
        peer.trusted = True

    def _down(self, peer: Peer, problem: str) -> None:
        if peer.healthy or peer.trusted:
            log.warning("peer %s (%s) is down: %s", peer.name, peer.url, problem)
        # Trust is re-established after an outage: whoever answers next must prove the key again.
        peer.healthy, peer.trusted, peer.problem = False, False, problem
        peer.failures += 1
