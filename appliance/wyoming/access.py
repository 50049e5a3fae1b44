"""Who may talk to the Wyoming port, which has no authentication of its own.

Two levels, decided from the peer's address when it connects:

- ``speech`` (asr, tts): loopback, any address in a *private* network this box
  is on (the networks of its own interfaces: the home LAN, a container bridge),
  and the configured ``wyoming.clients``;
- ``agent`` (handle as well): loopback and ``wyoming.clients`` only, because the
  agent acts (tools, the world model, prompts signed to a core on its behalf).

Everyone else is refused. See docs/security.md for why.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from enum import Enum

import ifaddr

from appliance.security.addresses import peer_address

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Level(Enum):
    """What a peer may use."""

    NONE = "none"
    SPEECH = "speech"
    AGENT = "agent"


def parse_clients(entries: Iterable[str]) -> tuple[Network, ...]:
    """``wyoming.clients`` as networks; ValueError names the entry that is neither an
    address nor a network."""
    networks: list[Network] = []
    for i, entry in enumerate(entries):
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"wyoming.clients[{i}]: {entry[:64]!r} is not an address or a "
                             "network like 192.168.1.20 or 192.168.1.0/24") from None
    return tuple(networks)


def local_private_networks() -> list[Network]:
    """The private networks of this box's interfaces (re-read on every call: DHCP moves)."""
    out: list[Network] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            host = ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip
            try:
                net = ipaddress.ip_network(f"{host.split('%')[0]}/{ip.network_prefix}",
                                           strict=False)
            except ValueError:
                continue
            if net.is_private and not net.is_loopback:
                out.append(net)
    return out


class AccessPolicy:
    """Decides a peer's :class:`Level` from its address."""

    def __init__(self, clients: tuple[Network, ...],
                 lan: Callable[[], list[Network]] = local_private_networks) -> None:
        self.clients = clients
        self._lan = lan

    def level(self, peer: str | None) -> Level:
        address = peer_address(peer)
        if address is None:
            return Level.NONE
        if address.is_loopback or any(address in net for net in self.clients
                                       if net.version == address.version):
            return Level.AGENT
        if any(address in net for net in self._lan() if net.version == address.version):
            return Level.SPEECH
        return Level.NONE

