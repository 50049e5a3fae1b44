"""A throwaway LAN made of network namespaces: a bridge, veth pairs, a multicast route.

``Lan.create(["a", "b", "c"])`` builds namespace ``ha<id>lan`` with a bridge,
one namespace per member (``ha<id>a`` ...) whose ``veth0`` sits on the
bridge, and a ``vethha<id>`` in the root namespace (address ``.254``) so the
test process can talk to the members. ``destroy()`` removes all of it; the
names are unique per run. Needs root and iproute2.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.daemon import DaemonProcess
from tests.support.nodelink import device_token, web_pin

MEMBER_IFACE = "veth0"
REQUEST_TIMEOUT_S = 10.0
HOST_OCTET = 254


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def _sysctl(ns: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", f"echo {value} > {path}"],
                   check=True, capture_output=True)


def _block_multicast(ns: str, port: str) -> None:
    """Make the "switch" stop flooding multicast out of ``port`` (mDNS cannot cross it).

    ``multicast off`` on an interface alone does not stop a socket that names
    it with IP_MULTICAST_IF, so the bridge itself drops it, like a switch that blocks mDNS.
    """
    subprocess.run(["bridge", "-n", ns, "link", "set", "dev", port, "mcast_flood", "off"],
                   check=True, capture_output=True)


def _free_subnet() -> ipaddress.IPv4Network:
    routes = _ip("-4", "route", "show", "table", "all").stdout
    used = []
    for line in routes.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("local", "broadcast", "multicast", "unreachable"):
            word = line.split()[1]
        try:
            used.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            continue
    for _ in range(100):
        net = ipaddress.IPv4Network(f"10.{secrets.randbelow(200) + 50}."
                                   f"{secrets.randbelow(250) + 1}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise RuntimeError("no free 10.x.y.0/24 subnet for the test LAN")


@dataclass
class Lan:
    """The namespaces of one test; ``addr(member)`` is a member's IPv4 address."""

    tag: str
    subnet: ipaddress.IPv4Network
    members: dict[str, int] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    host_iface: str = ""

    @classmethod
    def create(cls, names: list[str], *, multicast: bool = True) -> Lan:
        if os.geteuid() != 0:
            raise RuntimeError("LAN tests need root (network namespaces)")
        lan = cls(tag=secrets.token_hex(3), subnet=_free_subnet())
        try:
            lan._build(names, multicast)
        except BaseException:
            lan.destroy()
            raise
        return lan

    def ns(self, member: str) -> str:
        return f"ha{self.tag}{member}"

    @property
    def bridge_ns(self) -> str:
        return f"ha{self.tag}lan"

    def addr(self, member: str) -> str:
        return str(self.subnet.network_address + self.members[member])

    def addr6(self, member: str) -> str:
        """The member's IPv6 ULA (every member has one, without DAD), in canonical form.

        Canonical (``fd30:74e::1``, not ``fd30:074e::1``), as the daemons print it:
        a tag with a leading zero in its second group once made a URL comparison fail.
        """
        raw = f"fd{self.tag[:2]}:{self.tag[2:]}::{self.members[member]:x}"
        return str(ipaddress.IPv6Address(raw))

    @property
    def host_addr(self) -> str:
        return str(self.subnet.network_address + HOST_OCTET)

    def run(self, member: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns(member), *argv],
                              check=True, capture_output=True, text=True)

    def destroy(self) -> None:
        """Remove every namespace and the host veth (idempotent, never raises)."""
        if self.host_iface:
            _ip("link", "del", self.host_iface, check=False)
            self.host_iface = ""
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
            _ip("netns", "del", ns, check=False)
        self.created.clear()

    # ------------------------------------------------------------ internals

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.created.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def _build(self, names: list[str], multicast: bool) -> None:
        lan_ns = self.bridge_ns
        self._add_ns(lan_ns)
        _ip("-n", lan_ns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", lan_ns, "link", "set", "br0", "up")
        prefix = self.subnet.prefixlen
        for i, name in enumerate(names, start=1):
            ns = self.ns(name)
            self._add_ns(ns)
            # IPv6 duplicate address detection would keep link-local addresses
            # tentative for a second or two; nothing else on this LAN can collide.
            _sysctl(ns, "net.ipv6.conf.all.accept_dad", "0")
            _sysctl(ns, "net.ipv6.conf.default.accept_dad", "0")
            port = f"p{i}"
            _ip("-n", lan_ns, "link", "add", port, "type", "veth", "peer", "name",
                MEMBER_IFACE, "netns", ns)
            _ip("-n", lan_ns, "link", "set", port, "master", "br0", "up")
            if not multicast:
                _block_multicast(lan_ns, port)
            self.members[name] = i
            _ip("-n", ns, "addr", "add", f"{self.addr(name)}/{prefix}", "dev", MEMBER_IFACE)
            _ip("-n", ns, "-6", "addr", "add", f"{self.addr6(name)}/64", "dev", MEMBER_IFACE,
                "nodad")
            if not multicast:
                _ip("-n", ns, "link", "set", MEMBER_IFACE, "multicast", "off")
            _ip("-n", ns, "link", "set", MEMBER_IFACE, "up")
            if multicast:
                _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", MEMBER_IFACE)
        # The test process's own port on the LAN, from the root namespace.
        self.host_iface = f"vethha{self.tag}"
        _ip("link", "add", self.host_iface, "type", "veth", "peer", "name", "ph",
            "netns", lan_ns)
        _ip("-n", lan_ns, "link", "set", "ph", "master", "br0", "up")
        if not multicast:
            _block_multicast(lan_ns, "ph")
        _ip("addr", "add", f"{self.host_addr}/{prefix}", "dev", self.host_iface)
        if not multicast:
            _ip("link", "set", self.host_iface, "multicast", "off")
        _ip("link", "set", self.host_iface, "up")


class LanNode:
    """A daemon in a namespace, reached at its LAN address from the test process."""

    def __init__(self, proc: DaemonProcess, addr: str) -> None:
        self.proc = proc
        self.addr = addr
        self._token: str | None = None
        # Take the daemon's notify messages as they come, so `proc.notify.lines()`
        # stays complete while a test waits on other things.
        self._drain = asyncio.get_running_loop().create_task(self._drain_notify())

    async def close(self) -> None:
        """Stop draining the notify socket (before the daemon is stopped)."""
        self._drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._drain

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the daemon (after the notify drain stops); its exit status."""
        await self.close()
        return await self.proc.stop(sig)

    async def _drain_notify(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await self.proc.notify.recv(3600)

    @property
    def url(self) -> str:
        """Its address on the LAN: HTTPS for people, TLS for nodes (one port)."""
        return f"https://{self.addr}:{self.proc.port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.addr}:{self.proc.port}"

    def session(self, **kw: Any) -> aiohttp.ClientSession:
        """A paired device's session with this node (bearer token, its certificate pinned)."""
        if self._token is None:
            self._token = device_token(self.proc.state_dir, "lan-tests")
        kw.setdefault("timeout", aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {self._token}"},
                                     connector=aiohttp.TCPConnector(
                                         ssl=web_pin(self.proc.state_dir)), **kw)

    async def get_json(self, path: str) -> tuple[int, Any]:
        """GET ``path`` as a paired device on the LAN."""
        async with self.session() as s, s.get(self.url + path) as r:
            return r.status, await r.json(content_type=None)

    async def peers(self, **query: str) -> list[dict[str, Any]]:
        q = "&".join(f"{k}={v}" for k, v in query.items())
        status, body = await self.get_json("/api/peers" + (f"?{q}" if q else ""))
        assert status == 200, body
        return body["peers"]
