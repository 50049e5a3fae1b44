"""Host, Origin and Content-Type checks: what stops DNS rebinding and cross-site requests.

- **Host** must be one of the box's names (``localhost``, its hostname,
  ``hostname.local``, its mDNS host name, ``http.names``) or the address the
  connection arrived at; anything else is 421 (a rebinding page's requests
  carry the attacker's name).
- **Origin**, when present (browsers send it on every cross-origin request and
  every WebSocket), must be this very origin; a state-changing request
  (POST, PUT, PATCH, DELETE) without one is accepted only from loopback
  non-browser clients, peers and bearer-token scripts. Anything else is 403.
- **Content-Type**: a request body must be ``application/json`` except on the
  routes that take audio or forms (:data:`RAW_BODY_PATHS`), 415 otherwise, so
  a form or ``text/plain`` post from another site never reaches a JSON route.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

from appliance.security.addresses import is_loopback
from appliance.web.app import Handler, Middleware
from appliance.web.errors import json_error
from appliance.web.guard import over_node_link

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RAW_BODY_PATHS = frozenset({"/api/stt", "/v1/audio/transcriptions", "/v1/audio/translations"})
#: A script signing in has no token yet; a code only the box's owner can make is no CSRF prize.
NO_ORIGIN_PATHS = frozenset({"/api/signin"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "localhost.localdomain"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def split_host(host: str) -> tuple[str, str]:
    """(name or address, port) of a Host header value, lower case; ``("", "")`` if malformed."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return "", ""
        name, rest = host[1:end], host[end + 1:]
        port = rest[1:] if rest.startswith(":") else ""
    elif host.count(":") == 1:
        name, port = host.split(":")
    else:
        name, port = host, ""
    if port and not port.isdigit():
        return "", ""
    return name.split("%", 1)[0].rstrip("."), port


class BoxNames:
    """The names a request's Host may carry for this box."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(n.lower().rstrip(".") for n in names if n) | LOOPBACK_NAMES

    def allows(self, host: str, local_address: str | None) -> bool:
        """Whether ``host`` (a Host header) names this box; ``local_address`` is where the
        connection arrived."""
        name, _ = split_host(host)
        if not name:
            return False
        if name in self.names:
            return True
        try:
            addr = ipaddress.ip_address(name)
        except ValueError:
            return False
        if addr.is_loopback:
            return True
        try:
            here = ipaddress.ip_address(str(local_address or "").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(here, ipaddress.IPv6Address) and here.ipv4_mapped is not None:
            here = here.ipv4_mapped
        return addr == here


def make_origin_check(names: BoxNames) -> Middleware:
    """The middleware (see the module doc)."""

    @web.middleware
    async def origin_check(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        transport = request.transport
        sock = transport.get_extra_info("sockname") if transport is not None else None
        if not names.allows(host, sock[0] if sock else None):
            return json_error(421, f"this box does not answer to the name {host[:100]!r}; "
                                   "use its hostname, hostname.local or address, or add the "
                                   "name to http.names", code="misdirected_request")
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(origin, request.scheme, host):
            return json_error(403, f"requests from {origin[:100]!r} are not accepted "
                                   "(cross-site)", code="cross_site")
        if request.method in STATE_CHANGING:
            if origin is None and request.path not in NO_ORIGIN_PATHS \
                    and not _non_browser(request):
                return json_error(403, "a request that changes something needs an Origin "
                                       "header (browsers), or a bearer token (scripts)",
                                  code="origin_required")
            if _has_body(request) and request.path not in RAW_BODY_PATHS \
                    and not _is_json(request.content_type):
                return json_error(415, f"{request.path[:100]} takes application/json, not "
                                       f"{request.content_type!r}", code="unsupported_media_type")
        return await handler(request)

    return origin_check


def _same_origin(origin: str, scheme: str, host: str) -> bool:
    want_name, want_port = split_host(host)
    if "://" not in origin:
        return False
    o_scheme, rest = origin.lower().split("://", 1)
    name, port = split_host(rest)
    default = _DEFAULT_PORTS.get(scheme, "")
    return (o_scheme == scheme and name == want_name
            and (port or default) == (want_port or default) and bool(name))


def _non_browser(request: web.Request) -> bool:
    """Loopback, a node over mutual TLS, or a script with a bearer token: no Origin needed."""
    if request.headers.get("Authorization", "")[:7].lower() == "bearer ":
        return True
    return over_node_link(request) or is_loopback(request.remote)


def _has_body(request: web.Request) -> bool:
    if request.content_length:
        return True
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json"))
