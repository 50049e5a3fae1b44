"""Who is calling, by socket address: loopback or not, and the address itself.

Used by the HTTP server's middleware and handlers and by the Wyoming server's
access rules; plain stdlib, no HTTP.
"""

from __future__ import annotations

import functools
import ipaddress


@functools.lru_cache(maxsize=1024)
def is_loopback(remote: str | None) -> bool:
    """Whether a peer address is loopback (127/8, ::1, or IPv4-mapped 127/8)."""
    addr = peer_address(remote)
    return addr is not None and addr.is_loopback


def peer_address(remote: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A peer's address as the socket reports it (zone dropped, IPv4-mapped IPv6 as IPv4),
    or None when it is not an IP address."""
    if not remote:
        return None
    try:
        addr = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr
