"""Who is asking, and what they may use: the access middleware of the HTTP app.

Every request gets a :class:`Caller`, from how it arrived:

- **loopback**: plain HTTP (or HTTPS) from 127.0.0.0/8 or ::1, the box's own
  CLI and page (appliance.web.origin checks their Host and Origin);
- **peer**: a node of the cluster over mutual TLS (its certificate endorsed
  by the cluster key, not revoked; appliance.security.nodetls);
- **device**: HTTPS with a paired device's token, as the ``ha_device``
  cookie or ``Authorization: Bearer`` (appliance.security.devices);
- **scraper**: an address in ``http.metrics_clients``, for ``/metrics`` only;
- **stranger**: anyone else.

Plain HTTP from the LAN is redirected to HTTPS on the same port (308).
Strangers get only :data:`OPEN_PATHS` (``/health``, the sign-in API, the
page's shell); everything else answers 401. Peers get only
:data:`PEER_PREFIXES`; devices everything but the peers' own routes and the
loopback-only device management.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance.logs import RateLimit
from appliance.security.addresses import is_loopback, peer_address
from appliance.security.devices import DeviceStore
from appliance.security.nodetls import NodeTLS, PeerRejected
from appliance.web.app import Handler, Middleware
from appliance.web.errors import json_error
from appliance.web.guard import over_node_link

log = logging.getLogger(__name__)

COOKIE = "ha_device"
#: Anyone may use these (the page's shell loads, then asks the person to sign in).
OPEN_PATHS = frozenset({"/health", "/", "/api/signin", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
#: What a peer node uses; nothing else is served over a node link.
PEER_PREFIXES = ("/health", "/api/status", "/metrics", "/api/peers/challenge",
                 "/api/cluster/", "/v1/", "/api/tools", "/api/world")
#: Peers only: a device never calls the tool server or the cluster's own routes.
PEER_ONLY_PREFIXES = ("/api/tools", "/api/peers/challenge", "/api/cluster/")
#: The box's own user only: pairing and revoking devices.
LOOPBACK_ONLY_PREFIXES = ("/api/devices",)
SIGN_IN_HINT = ("sign in first: open this page in a browser and enter the code that "
                "`sudo hybrid-agent devices add NAME` shows on the box, or send "
                "`Authorization: Bearer <device token>`")


@dataclass(frozen=True)
class Caller:
    """Who sent a request."""

    kind: str
    """loopback, peer, device, scraper or stranger."""
    id: str = ""
    name: str = ""

    @property
    def owner(self) -> str:
        """Whose conversations this caller may see: one device, one peer, or the box itself."""
        return f"{self.kind}:{self.id}" if self.id else self.kind


LOOPBACK = Caller("loopback")
STRANGER = Caller("stranger")
SCRAPER = Caller("scraper")
CALLER: Any = web.RequestKey("caller", Caller) if hasattr(web, "RequestKey") else "caller"
# A flood of strangers must not flood the journal too.
_REFUSALS = RateLimit(10.0)


def caller_of(request: web.Request) -> Caller:
    """The request's caller (the middleware sets it; loopback for a request it never saw)."""
    return request.get(CALLER) or (LOOPBACK if is_loopback(request.remote) else STRANGER)


def is_peer(request: web.Request) -> bool:
    return caller_of(request).kind == "peer"


def device_token(request: web.Request) -> str:
    """The device token a request carries (bearer first, then the cookie), or ''."""
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.cookies.get(COOKIE, "")


def make_access(devices: DeviceStore, node_tls: Callable[[], NodeTLS | None],
                metrics_clients: list[str]) -> Middleware:
    """The middleware (see the module doc)."""
    scrapers = [ipaddress.ip_network(c, strict=False) for c in metrics_clients]

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        caller = identify(request)
        if isinstance(caller, web.StreamResponse):
            return caller
        request[CALLER] = caller
        why = refusal(caller, request.path)
        if why is not None:
            status, message = why
            quiet = _REFUSALS.ready()
            if quiet is not None:
                log.warning("%d for %s %s from %s (%s): %s%s", status, request.method,
                            request.path[:200], request.remote, caller.kind, message,
                            f" ({quiet} more refused since)" if quiet else "")
            headers = {"WWW-Authenticate": 'Bearer realm="hybrid-agent"'} \
                if status == 401 else None
            return json_error(status, message, headers=headers,
                              code="sign_in_required" if status == 401 else "forbidden")
        return await handler(request)

    def identify(request: web.Request) -> Caller | web.StreamResponse:
        transport = request.transport
        tls = transport.get_extra_info("ssl_object") if transport is not None else None
        if tls is None:
            if is_loopback(request.remote):
                return LOOPBACK
            if request.path == "/metrics" and _in(request.remote, scrapers):
                return SCRAPER
            return _to_https(request)
        if over_node_link(request):  # only the node context asks for a client certificate
            tls_ = node_tls()
            if tls_ is None:
                return json_error(403, "this node has no cluster key", code="no_cluster_key")
            try:
                peer = tls_.verify(tls)
            except PeerRejected as exc:
                return json_error(403, str(exc), code="peer_rejected")
            return Caller("peer", peer.node_id)
        if is_loopback(request.remote):
            return LOOPBACK
        token = device_token(request)
        if token:
            device = devices.authenticate(token)
            if device is not None:
                return Caller("device", device.id, device.name)
        if request.path == "/metrics" and _in(request.remote, scrapers):
            return SCRAPER
        return STRANGER

    return access


def refusal(caller: Caller, path: str) -> tuple[int, str] | None:
    """(status, why) when ``caller`` may not use ``path``; None when it may."""
    kind = caller.kind
    if kind == "loopback":
        return None
    if kind == "peer":
        if path.startswith(PEER_PREFIXES) or path in ("/v1", "/api/tools", "/api/world"):
            return None
        return 403, f"{path[:100]} is not served to other nodes"
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return None
    if kind == "device":
        if path.startswith(PEER_ONLY_PREFIXES):
            return 403, f"{path[:100]} is for the cluster's nodes only"
        if path.startswith(LOOPBACK_ONLY_PREFIXES):
            return 403, "devices are paired and revoked on the box itself"
        return None
    if kind == "scraper" and path == "/metrics":
        return None
    return 401, SIGN_IN_HINT


def _to_https(request: web.Request) -> web.StreamResponse:
    host = request.headers.get("Host", "")
    if not host or any(c in host for c in "/\\@ \r\n"):
        return json_error(400, "a plain-HTTP request from the LAN needs a Host header; use "
                               "https://", code="use_https")
    raise web.HTTPPermanentRedirect(f"https://{host}{request.raw_path}")


def _in(remote: str | None, networks: list[Any]) -> bool:
    addr = peer_address(remote)
    return addr is not None and any(addr in net for net in networks)
