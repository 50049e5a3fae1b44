"""The "discovery" component: advertise this node, browse for peers, keep the registry.

Other parts use it through ``node.get("discovery")``:

- ``.registry``: a :class:`~appliance.discovery.registry.PeerRegistry`;
  ``registry.select(role, model=None) -> list[Peer]`` gives the trusted
  healthy peers with that role, least loaded first, then lowest RTT;
  ``registry.mark_down(peer_id)`` after a peer failed a request;
- ``peer_summaries() -> list[dict]``: every known peer, for status pages.

Static peers (``discovery.static_peers``) feed the same registry; mDNS runs
only when ``discovery.enabled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from zeroconf.asyncio import AsyncZeroconf

from appliance.config import DiscoveryConfig
from appliance.discovery import interfaces
from appliance.discovery.advertise import Advertiser, ip_version
from appliance.discovery.browse import Announcement, Browser
from appliance.discovery.prober import MAX_BACKOFF_S, Prober
from appliance.discovery.registry import PeerRegistry
from appliance.discovery.txt import local_txt
from appliance.net.challenge import challenge_peer
from appliance.net.http1 import Pool
from appliance.node import Component, Node
from appliance.security.errors import ChallengeError
from appliance.tasks import cancel_and_wait

log = logging.getLogger(__name__)

FORGET_CHECK_S = 60.0
NO_KEY_PROBLEM = "not verified: this node has no cluster key (hybrid-agent join CODE)"


class Discovery(Component):
    """mDNS advertise + browse, static peers, the prober and the registry."""

    name = "discovery"
    start_timeout_s = 15.0

    def __init__(self, cfg: DiscoveryConfig, node: Node, port: int,
                 services: dict[str, int] | None = None) -> None:
        self.cfg = cfg
        self.node = node
        self.port = port
        self.services = dict(services or {})
        """Other services of this process announced too: DNS-SD type -> port."""
        self.service_advertisers: list[Advertiser] = []
        self.registry = PeerRegistry(own_id=node.node_id)
        self.azc: AsyncZeroconf | None = None
        self.advertiser: Advertiser | None = None
        self.browser: Browser | None = None
        self.prober: Prober | None = None
        self._pool: Pool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.problem = ""

    # ------------------------------------------------------------ Component

    async def start(self) -> None:
        for url in self.cfg.static_peers:
            check_static_url(url)
        self._pool = Pool(limit=64, node_tls=self._node_tls)
        self.prober = Prober(self.registry, self._pool, self._key,
                             interval_s=self.cfg.probe_interval_s,
                             timeout_s=self.cfg.probe_timeout_s,
                             revocations=self._revocations)
        self.registry.on_change = self.prober.watch
        loop = asyncio.get_running_loop()
        for url in self.cfg.static_peers:
            self._tasks.append(loop.create_task(self._join_static(url), name="static-peer"))
        self._tasks.append(loop.create_task(self._forget_loop(), name="peer-forget"))
        if self.cfg.enabled:
            await self._start_mdns()

    async def stop(self) -> None:
        for advertiser in self.service_advertisers:
            await advertiser.stop()
        if self.advertiser is not None:
            await self.advertiser.stop()
        if self.browser is not None:
            await self.browser.stop()
        if self.azc is not None:
            with contextlib.suppress(Exception):
                await self.azc.async_close()
        await cancel_and_wait(self._tasks)
        if self.prober is not None:
            await self.prober.close()
        if self._pool is not None:
            await self._pool.close()

    def describe(self) -> dict[str, Any]:
        return {"mdns": self.azc is not None, "service": self.advertiser.name
                if self.advertiser else "", "peers": len(self.registry), "problem": self.problem}

    def status_fragment(self) -> str:
        peers = self.registry.peers()
        usable = [p for p in peers if p.trusted and p.healthy]
        text = f"{len(usable)}/{len(peers)} peers usable"
        cores = [p for p in usable if p.tier == "core"]
        if cores:
            text = f"core {cores[0].name} at {cores[0].url}; " + text
        return text if not self.problem else f"{text}; discovery: {self.problem}"

    def peer_summaries(self) -> list[dict[str, Any]]:
        """Every known peer as a JSON-able dict (see Peer.summary)."""
        return [p.summary() for p in self.registry.peers()]

    # ------------------------------------------------------------ internals

    def _key(self) -> bytes | None:
        security = self.node.get("security")
        return getattr(security, "key", None)

    def _node_tls(self) -> Any:
        return getattr(self.node.get("security"), "node_tls", None)

    def _revocations(self) -> Any:
        tls = self._node_tls()
        return None if tls is None else (tls.revocations.digest, tls.merge)

    async def _start_mdns(self) -> None:
        addrs = interfaces.nic_addresses(self.cfg.interfaces, self.cfg.ip_version)
        if not addrs:
            self.problem = ("no network interface to use for mDNS "
                            f"(discovery.interfaces: {self.cfg.interfaces or 'real NICs'})")
            log.warning("%s; only static peers will be found", self.problem)
            return
        self.azc = AsyncZeroconf(interfaces=interfaces.zeroconf_interfaces(addrs),
                                 ip_version=ip_version(self.cfg.ip_version))
        security = self.node.get("security")
        fingerprint = getattr(security, "fingerprint", "")
        host_label = host_label_of(self.node)

        def nics() -> list[interfaces.NicAddress]:
            return interfaces.nic_addresses(self.cfg.interfaces, self.cfg.ip_version)

        self.advertiser = Advertiser(
            self.azc, instance=self.node.name, host_label=host_label, port=self.port,
            txt=lambda: local_txt(self.node, fingerprint), nics=nics)
        await self.advertiser.start()
        for service_type, port in self.services.items():
            other = Advertiser(self.azc, instance=self.node.name, host_label=host_label,
                               port=port, txt=dict, nics=nics, service_type=service_type)
            await other.start()
            self.service_advertisers.append(other)
        self.browser = Browser(self.azc, self._found, self._lost)
        await self.browser.start()

    def _found(self, ann: Announcement) -> None:
        self.registry.announce(ann)

    def _lost(self, service_name: str) -> None:
        peer = self.registry.lost(service_name)
        if peer is not None:
            log.info("peer %s (%s) said goodbye", peer.name, peer.url)

    async def _join_static(self, url: str) -> None:
        """Challenge a static peer until it answers, then hand it to the prober."""
        assert self._pool is not None
        failures = 0
        while True:
            key = self._key()
            if key is None:
                self.registry.static_unverified(url.rstrip("/"), NO_KEY_PROBLEM)
            else:
                try:
                    answer = await challenge_peer(self._pool, url.rstrip("/"), key,
                                                  self.cfg.probe_timeout_s)
                except ChallengeError as exc:
                    # Listed untrusted with the reason, so the cluster view says why.
                    self.registry.static_unverified(url.rstrip("/"), str(exc))
                    if failures == 0:
                        log.warning("static peer %s: %s (retrying)", url, exc)
                else:
                    if self.registry.add_static(url.rstrip("/"), answer) is not None:
                        log.info("static peer %s is %s", url, answer.get("id"))
                    return
            failures += 1
            await asyncio.sleep(min(self.cfg.probe_interval_s * 2 ** min(failures - 1, 5),
                                    MAX_BACKOFF_S))

    async def _forget_loop(self) -> None:
        while True:
            await asyncio.sleep(FORGET_CHECK_S)
            for peer_id in self.registry.forget_stale():
                log.info("forgot peer %s (down and unannounced)", peer_id)


def check_static_url(url: str) -> None:
    """Raise ValueError naming the problem unless ``url`` is https://host:port[/]."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port, parts = None, None
    if parts is None or parts.scheme != "https" or not parts.hostname or port is None \
            or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"discovery.static_peers: {url!r} is not a URL like "
                         "https://192.168.1.10:8700 (peers talk TLS to each other)")


def host_label_of(node: Node) -> str:
    """The label of this node's mDNS host name (``<label>.local``)."""
    return f"{node.name}-{node.node_id[:8]}"
