"""The peer registry: every node seen on the LAN or configured, with health, load and trust.

Fed by the mDNS browser (announcements, goodbyes), by ``discovery.static_peers``
and by the prober (health, round-trip time, trust). Callers ask
:meth:`PeerRegistry.select` for the trusted healthy peers that have a role.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.discovery.browse import Announcement

# A peer that is down and no longer announced is forgotten after this long.
FORGET_AFTER_S = 600.0
MAX_PEERS = 256
#: Id prefix of a configured static peer that has not proved the cluster key (yet).
UNVERIFIED_PREFIX = "static:"
#: Longest problem text kept for a peer (callers pass exception messages).
MAX_PROBLEM_CHARS = 300


@dataclass
class Peer:
    """One other node. ``url`` is ``https://addr:port`` (IPv6 in brackets), its node link."""

    id: str
    name: str
    url: str
    addresses: list[str]
    port: int
    tier: str = ""
    roles: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    version: str = ""
    load: float = 0.0
    last_seen: float = 0.0
    healthy: bool = False
    rtt_s: float | None = None
    trusted: bool = False
    kf: str = ""
    #: "mdns" or "static" (a static peer is never forgotten).
    source: str = "mdns"
    service_name: str = ""
    failures: int = 0
    problem: str = ""
    #: An announced new address of this (trusted) peer, not proved yet, and its addresses.
    candidate_url: str = ""
    candidate_addresses: list[str] = field(default_factory=list)
    #: An mDNS goodbye arrived: the peer is dropped if the next probe finds it gone.
    said_goodbye: bool = False
    #: An rpc worker's link port and the memory it offers (MiB), from its TXT record.
    rpc_port: int = 0
    mem_mb: int = 0

    def has(self, role: str, model: str | None = None) -> bool:
        """Whether the peer offers ``role`` (and ``model``)."""
        return role in self.roles and (model is None or model in self.models)

    def summary(self) -> dict[str, Any]:
        """A JSON-able view for /api/peers, /api/status and the CLI."""
        return {"id": self.id, "name": self.name, "url": self.url,
                "addresses": list(self.addresses), "port": self.port, "tier": self.tier,
                "roles": list(self.roles), "models": list(self.models),
                "version": self.version, "load": round(self.load, 3),
                "last_seen": round(self.last_seen, 3), "healthy": self.healthy,
                "rtt_s": None if self.rtt_s is None else round(self.rtt_s, 4),
                "trusted": self.trusted, "kf": self.kf, "source": self.source,
                "problem": self.problem,
                **({"rpc_port": self.rpc_port, "mem_mb": self.mem_mb}
                   if "rpc" in self.roles else {})}


class PeerRegistry:
    """Peers by node id; all methods run on the event loop."""

    def __init__(self, own_id: str = "", clock: Callable[[], float] = time.time) -> None:
        self.own_id = own_id
        self._clock = clock
        self._peers: dict[str, Peer] = {}
        #: Called with a peer id when a peer is new, moved, or marked down (the prober wakes).
        self.on_change: Callable[[str], None] = lambda _peer_id: None

    # ------------------------------------------------------------ queries

    def select(self, role: str, model: str | None = None) -> list[Peer]:
        """Trusted healthy peers with ``role`` (and ``model``): least loaded, then lowest RTT."""
        found = [p for p in self._peers.values() if p.trusted and p.healthy and p.has(role, model)]
        found.sort(key=lambda p: (p.load, p.rtt_s if p.rtt_s is not None else math.inf, p.id))
        return found

    def get(self, peer_id: str) -> Peer | None:
        return self._peers.get(peer_id)

    def peers(self) -> list[Peer]:
        """Every known peer, by name."""
        return sorted(self._peers.values(), key=lambda p: (p.name, p.id))

    def __len__(self) -> int:
        return len(self._peers)

    # ------------------------------------------------------------ updates

    def announce(self, ann: Announcement) -> Peer | None:
        """Record an mDNS announcement; the peer, or None when it is ourselves or unusable.

        mDNS is only a hint. A peer that has not proved itself is listed with what it
        announces; a trusted peer's facts come only from its authenticated answers, so an
        announcement that differs from them (another address, other roles, models, load)
        changes nothing and only makes the prober check the peer again: at the announced
        address, which is adopted if the peer proves itself there.
        """
        peer_id = ann.txt.id
        if not peer_id or peer_id == self.own_id:
            return None
        addresses = list(ann.addresses)
        url = peer_url(addresses, ann.port)
        if url is None:
            return None
        peer = self._peers.get(peer_id)
        if peer is not None and peer.trusted:
            if url != peer.url and url != peer.candidate_url:
                peer.candidate_url, peer.candidate_addresses = url, addresses
                self.on_change(peer_id)
            elif _differs(peer, ann):
                self.on_change(peer_id)
            return peer
        if peer is None:
            if len(self._peers) >= MAX_PEERS:
                return None
            peer = Peer(id=peer_id, name=ann.instance, url=url, addresses=addresses,
                        port=ann.port)
            self._peers[peer_id] = peer
            moved = True
        else:
            moved = peer.url != url or peer.kf != ann.txt.kf
        if moved and peer.source != "static":
            peer.url, peer.healthy = url, False
        peer.name, peer.addresses, peer.port = ann.instance, addresses, ann.port
        peer.service_name = ann.service_name
        peer.tier, peer.roles, peer.models = ann.txt.tier, list(ann.txt.roles), \
            list(ann.txt.models)
        peer.version, peer.load, peer.kf = ann.txt.version, ann.txt.load, ann.txt.kf
        peer.rpc_port, peer.mem_mb = ann.txt.rpc_port, ann.txt.mem_mb
        peer.last_seen = self._clock()
        if moved or not peer.healthy:
            # A fresh announcement from a peer we think is down: probe now, not after backoff.
            self.on_change(peer_id)
        return peer

    def apply_answer(self, peer: Peer, answer: dict[str, Any]) -> None:
        """Take a peer's facts from its authenticated challenge answer."""
        from appliance.discovery.txt import parse_txt
        from appliance.net.text import clean

        txt = parse_txt({k: v for k, v in answer.items() if isinstance(v, str)})
        peer.tier, peer.roles, peer.models = txt.tier, list(txt.roles), list(txt.models)
        peer.version, peer.load, peer.kf = txt.version, txt.load, txt.kf
        peer.rpc_port, peer.mem_mb = txt.rpc_port, txt.mem_mb
        name = clean(answer.get("name", ""), 63)
        # An mDNS peer keeps its service's instance name (unique on the LAN, where two boxes
        # may share a node name); a static one has only this.
        if name and (peer.source == "static" or not peer.name):
            peer.name = name
        peer.last_seen = self._clock()

    def add_static(self, url: str, answer: dict[str, Any]) -> Peer | None:
        """Record a static peer from its (already verified) challenge answer."""
        from appliance.net.text import clean

        peer_id = clean(answer.get("id", ""), 128)
        if not peer_id or peer_id == self.own_id:
            return None
        self._peers.pop(UNVERIFIED_PREFIX + url, None)
        peer = self._peers.get(peer_id)
        host, port = _split_url(url)
        if peer is None:
            if len(self._peers) >= MAX_PEERS:
                return None
            peer = Peer(id=peer_id, name=clean(answer.get("name", "") or host, 63), url=url,
                        addresses=[host], port=port)
            self._peers[peer_id] = peer
        peer.source, peer.url = "static", url
        self.apply_answer(peer, answer)
        peer.trusted, peer.healthy, peer.failures, peer.problem = True, True, 0, ""
        self.on_change(peer_id)
        return peer

    def static_unverified(self, url: str, problem: str) -> Peer | None:
        """List a configured static peer that has not proved the key: untrusted, with why.

        It is never selected (untrusted) nor probed; once its challenge succeeds,
        ``add_static`` replaces it with the real peer.
        """
        peer_id = UNVERIFIED_PREFIX + url
        peer = self._peers.get(peer_id)
        if peer is None:
            if len(self._peers) >= MAX_PEERS:
                return None
            host, port = _split_url(url)
            peer = Peer(id=peer_id, name=host, url=url, addresses=[host], port=port,
                        source="static")
            self._peers[peer_id] = peer
        peer.trusted, peer.healthy = False, False
        peer.problem = problem[:MAX_PROBLEM_CHARS]
        return peer

    def lost(self, service_name: str) -> Peer | None:
        """An mDNS goodbye (or expiry): drop the peer unless it is static; the dropped peer.
        Anyone can send a goodbye, so a trusted peer is probed first and dropped only if the
        probe finds it gone (by the prober)."""
        for peer in list(self._peers.values()):
            if peer.service_name == service_name and peer.source != "static":
                if peer.trusted:
                    peer.said_goodbye = True
                    self.on_change(peer.id)
                    return None
                del self._peers[peer.id]
                return peer
        return None

    def mark_down(self, peer_id: str, problem: str = "marked down by a caller") -> None:
        """A caller saw the peer fail: stop selecting it until a probe says it is back."""
        peer = self._peers.get(peer_id)
        if peer is not None and peer.healthy:
            peer.healthy = False
            peer.problem = problem[:MAX_PROBLEM_CHARS]
            self.on_change(peer_id)

    def remove(self, peer_id: str) -> None:
        self._peers.pop(peer_id, None)

    def forget_stale(self) -> list[str]:
        """Drop non-static peers down and unannounced for FORGET_AFTER_S; their ids."""
        now = self._clock()
        gone = [p.id for p in self._peers.values()
                if p.source != "static" and not p.healthy and now - p.last_seen > FORGET_AFTER_S]
        for peer_id in gone:
            del self._peers[peer_id]
        return gone


def _differs(peer: Peer, ann: Announcement) -> bool:
    """Whether an announcement says something other than what the peer last proved."""
    txt = ann.txt
    return (txt.tier, list(txt.roles), list(txt.models), txt.version, txt.kf,
            round(txt.load, 3), txt.rpc_port, txt.mem_mb) != (
        peer.tier, peer.roles, peer.models, peer.version, peer.kf, round(peer.load, 3),
        peer.rpc_port, peer.mem_mb)


def peer_url(addresses: list[str], port: int) -> str | None:
    """``https://addr:port`` for the best address: IPv4, else a routable IPv6 (bracketed)."""
    best: str | None = None
    for text in addresses:
        try:
            addr = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if addr.version == 4:
            return f"https://{addr}:{port}"
        if best is None and not addr.is_link_local:
            best = f"https://[{addr}]:{port}"
    return best


def _split_url(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 443
