"""Which network cards mDNS uses: real NICs by default, or the configured list.

Virtual devices (containers, bridges, VPN tunnels, loopback) are skipped by
default: announcing a core on docker0 or wg0 only confuses the LAN.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import ifaddr

SKIP_PREFIXES = ("docker", "veth", "br-", "virbr", "tun", "tap", "wg", "lo")
IP_VERSIONS = ("all", "v4", "v6")


@dataclass(frozen=True)
class NicAddress:
    """One address of one interface."""

    iface: str
    address: str
    version: int
    index: int

    @property
    def link_local(self) -> bool:
        return ipaddress.ip_address(self.address).is_link_local


def is_virtual(name: str) -> bool:
    """Whether an interface name looks like a virtual device skipped by default."""
    return name.startswith(SKIP_PREFIXES)


def nic_addresses(names: list[str] | tuple[str, ...] = (), ip_version: str = "all"
                  ) -> list[NicAddress]:
    """Addresses of the named interfaces, or of every real NIC when ``names`` is empty."""
    out: list[NicAddress] = []
    for adapter in ifaddr.get_adapters():
        name = adapter.nice_name
        if names and name not in names:
            continue
        if not names and is_virtual(name):
            continue
        for ip in adapter.ips:
            if isinstance(ip.ip, tuple):
                if ip_version == "v4":
                    continue
                out.append(NicAddress(name, ip.ip[0].split("%")[0], 6, adapter.index or 0))
            else:
                if ip_version == "v6":
                    continue
                out.append(NicAddress(name, ip.ip, 4, adapter.index or 0))
    return out


def zeroconf_interfaces(addrs: list[NicAddress]) -> list[str | int]:
    """The ``interfaces`` argument for Zeroconf: IPv4 addresses and IPv6 interface indexes."""
    v4 = [a.address for a in addrs if a.version == 4]
    v6 = sorted({a.index for a in addrs if a.version == 6 and a.index})
    return [*v4, *v6]


def advertised(addrs: list[NicAddress]) -> list[str]:
    """Addresses to put in A/AAAA records, IPv4 first."""
    seen: dict[str, None] = {}
    for a in sorted(addrs, key=lambda a: a.version):
        seen.setdefault(a.address, None)
    return list(seen)
