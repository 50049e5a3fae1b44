"""Announce this node as ``_hybrid-agent._tcp.local.`` (and its other services, such as
``_wyoming._tcp.local.``) and keep the record current.

The instance name is the node name, made unique by python-zeroconf on a
conflict. The TXT ``load`` is refreshed at most every LOAD_REFRESH_S; the
interfaces' addresses are re-read every ADDRESS_CHECK_S and, when they
change, zeroconf moves its sockets and the record is re-announced. ``stop`` sends goodbye packets.

Every record sent carries a fresh ``seq``: a browser that still caches an
identical earlier TXT (a load going 0 -> 1 -> 0 within zeroconf's cache
cleanup interval) treats the repeat as known and reports no update, so the
edge's view of the load would stay stuck at 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from appliance.discovery.interfaces import NicAddress, advertised, zeroconf_interfaces
from appliance.discovery.txt import SERVICE_TYPE
from appliance.tasks import cancel_and_wait

log = logging.getLogger(__name__)

LOAD_REFRESH_S = 2.0
ADDRESS_CHECK_S = 5.0
MAX_INSTANCE_CHARS = 63
_HOST_LABEL = re.compile(r"[^a-z0-9-]+")


class Advertiser:
    """One registered service on an AsyncZeroconf."""

    def __init__(self, azc: AsyncZeroconf, *, instance: str, host_label: str, port: int,
                 txt: Callable[[], dict[str, str]], nics: Callable[[], list[NicAddress]],
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 service_type: str = SERVICE_TYPE) -> None:
        self._azc = azc
        self._type = service_type
        self._instance = instance_name(instance)
        self._server = mdns_host(host_label) + "."
        self._port = port
        self._txt = txt
        self._nics = nics
        # The refresh loop's only clock: a test injects its own to count ticks without waiting.
        self._sleep = sleep
        self._info: AsyncServiceInfo | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_addresses: list[str] = []
        self._seq = 0

    @property
    def name(self) -> str:
        """The registered service name (after any rename on conflict)."""
        return self._info.name if self._info is not None else ""

    async def start(self) -> None:
        """Register (probing for a unique name) and wait for the first announcement."""
        self._last_addresses = advertised(self._nics())
        self._info = self._build(self._txt(), self._last_addresses)
        announced = await self._azc.async_register_service(self._info, allow_name_change=True)
        await announced
        log.info("advertising %s on %s port %d", self._info.name,
                 ", ".join(self._last_addresses), self._port)
        self._task = asyncio.get_running_loop().create_task(self._refresh(), name="mdns-refresh")

    async def stop(self) -> None:
        """Stop refreshing and send goodbye packets."""
        await cancel_and_wait([self._task])
        self._task = None
        if self._info is not None:
            info, self._info = self._info, None
            with contextlib.suppress(Exception):
                goodbye = await self._azc.async_unregister_service(info)
                await goodbye

    async def _refresh(self) -> None:
        txt = self._txt()
        since_address_check = 0.0
        while True:
            await self._sleep(LOAD_REFRESH_S)
            since_address_check += LOAD_REFRESH_S
            addresses = self._last_addresses
            nics: list[NicAddress] = []
            if since_address_check >= ADDRESS_CHECK_S:
                since_address_check = 0.0
                nics = self._nics()
                addresses = advertised(nics)
            new_txt = self._txt()
            if new_txt == txt and addresses == self._last_addresses:
                continue
            if addresses != self._last_addresses:
                log.info("addresses changed to %s; re-announcing", ", ".join(addresses) or "none")
                try:
                    if nics:
                        await self._azc.async_update_interfaces(zeroconf_interfaces(nics))
                except Exception:
                    log.exception("moving mDNS to the new addresses failed")
            txt, self._last_addresses = new_txt, addresses
            assert self._info is not None
            self._info = self._build(txt, addresses, name=self._info.name)
            try:
                await (await self._azc.async_update_service(self._info))
            except Exception:
                log.exception("updating the mDNS record failed")

    def _build(self, txt: dict[str, str], addresses: list[str], name: str = ""
               ) -> AsyncServiceInfo:
        self._seq += 1
        return AsyncServiceInfo(
            self._type, name or f"{self._instance}.{self._type}",
            port=self._port, properties={**txt, "seq": str(self._seq)}, server=self._server,
            parsed_addresses=addresses)


def mdns_host(label: str) -> str:
    """The ``.local`` host name announced for ``label`` (a Host the box answers to)."""
    return f"{_HOST_LABEL.sub('-', label.lower()).strip('-') or 'node'}.local"


def instance_name(name: str) -> str:
    """A DNS-SD instance label from a node name: printable, no dots, at most 63 chars."""
    text = "".join(ch for ch in name if ch.isprintable()).replace(".", "-").strip()
    return (text or "hybrid-agent")[:MAX_INSTANCE_CHARS]


def ip_version(choice: str) -> IPVersion:
    """Config ``discovery.ip_version`` -> zeroconf's enum."""
    return {"v4": IPVersion.V4Only, "v6": IPVersion.V6Only}.get(choice, IPVersion.All)
