"""Browse for ``_hybrid-agent._tcp.local.`` services and resolve each into an Announcement.

mDNS only says a peer exists; the prober decides whether it is alive and
trusted. Resolution runs in tasks so the browser's callback never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass

from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from appliance.discovery.txt import SERVICE_TYPE, Txt, parse_txt
from appliance.net.text import clean
from appliance.tasks import cancel_and_wait

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_MS = 3000
MAX_ADDRESSES = 16
# Resolutions in flight at once; beyond it, a flood of fake services is dropped.
MAX_PENDING_RESOLVES = 64


@dataclass(frozen=True)
class Announcement:
    """One resolved service: where it is and what its TXT says."""

    service_name: str
    instance: str
    addresses: tuple[str, ...]
    port: int
    txt: Txt


OnFound = Callable[[Announcement], None]
OnLost = Callable[[str], None]


class Browser:
    """An AsyncServiceBrowser feeding ``on_found`` (added/updated) and ``on_lost`` (removed)."""

    def __init__(self, azc: AsyncZeroconf, on_found: OnFound, on_lost: OnLost) -> None:
        self._azc = azc
        self._on_found = on_found
        self._on_lost = on_lost
        self._browser: AsyncServiceBrowser | None = None
        self._pending: dict[str, asyncio.Task[None]] = {}
        # Names updated while their resolution ran: resolved again, so the last TXT wins.
        self._stale: set[str] = set()

    async def start(self) -> None:
        self._browser = AsyncServiceBrowser(self._azc.zeroconf, [SERVICE_TYPE],
                                            handlers=[self._on_change])

    async def stop(self) -> None:
        await cancel_and_wait(list(self._pending.values()))
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.async_cancel()
            self._browser = None

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Removed:
            task = self._pending.pop(name, None)
            self._stale.discard(name)
            if task is not None:
                task.cancel()
            self._on_lost(name)
            return
        if name in self._pending:
            self._stale.add(name)
            return
        self._start_resolve(service_type, name)

    def _start_resolve(self, service_type: str, name: str) -> None:
        if len(self._pending) >= MAX_PENDING_RESOLVES:
            return
        self._pending[name] = asyncio.get_running_loop().create_task(
            self._resolve(service_type, name), name="mdns-resolve")

    async def _resolve(self, service_type: str, name: str) -> None:
        try:
            ann = await resolve(self._azc, service_type, name)
            if ann is not None:
                self._on_found(ann)
        except Exception:
            log.exception("resolving %s failed", clean(name, 100))
        finally:
            self._pending.pop(name, None)
        if name in self._stale:
            self._stale.discard(name)
            self._start_resolve(service_type, name)


async def resolve(azc: AsyncZeroconf, service_type: str, name: str,
                  timeout_ms: int = RESOLVE_TIMEOUT_MS) -> Announcement | None:
    """Resolve one service name; None when it does not answer in time."""
    info = AsyncServiceInfo(service_type, name)
    if not await info.async_request(azc.zeroconf, timeout_ms):
        return None
    return announcement(info)


def announcement(info: AsyncServiceInfo) -> Announcement | None:
    """An Announcement from resolved service info; None without a port or usable address."""
    addresses = tuple(a for a in info.parsed_scoped_addresses() if _usable(a))[:MAX_ADDRESSES]
    if not info.port or not addresses:
        return None
    instance = info.name[: -len(SERVICE_TYPE) - 1] if info.name.endswith(SERVICE_TYPE) \
        else info.name
    return Announcement(service_name=info.name, instance=clean(instance, 63),
                        addresses=addresses, port=int(info.port),
                        txt=parse_txt(info.properties or {}))


async def scan(azc: AsyncZeroconf, duration_s: float) -> list[Announcement]:
    """Browse for ``duration_s`` and return every service that resolved (for the CLI)."""
    found: dict[str, Announcement] = {}
    lost: set[str] = set()
    browser = Browser(azc, lambda a: found.__setitem__(a.service_name, a), lost.add)
    await browser.start()
    try:
        await asyncio.sleep(duration_s)
    finally:
        await browser.stop()
    return [a for name, a in sorted(found.items()) if name not in lost]


def _usable(address: str) -> bool:
    try:
        addr = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (addr.is_unspecified or addr.is_multicast)
