"""The HTTP server's middleware that refuses unsigned requests from the LAN to protected paths.

Protected: ``/v1/*``, ``/api/tools/*``, ``/api/world/*``. A request over a
node link (mutual TLS, appliance.security.nodetls) needs a valid token
(appliance.security.signing) naming this node, or gets 401. Loopback callers
and signed-in devices pass unsigned: the access middleware (appliance.web.access),
which runs before this one, has already decided who else may come this far.
The signature headers are checked before a byte of the body is read, so an
unsigned upload costs nothing; the body is then read within its route's limits
(appliance.web.bodies).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from appliance.logs import RateLimit
from appliance.security.errors import SignatureError
from appliance.security.signing import Verifier
from appliance.web.app import Handler, Middleware
from appliance.web.bodies import read_body
from appliance.web.errors import json_error

log = logging.getLogger(__name__)

PROTECTED_PREFIXES = ("/v1/", "/api/tools/", "/api/world/")
PROTECTED_EXACT = ("/v1", "/api/tools", "/api/world")
AUTH_SCHEME = 'HA-HMAC realm="hybrid-agent"'
# A flood of unsigned requests must not flood the journal too.
_REFUSALS = RateLimit(10.0)


def is_protected(path: str) -> bool:
    """Whether ``path`` needs a signature from non-loopback callers."""
    return path in PROTECTED_EXACT or path.startswith(PROTECTED_PREFIXES)


NODE_LINK: Any = web.RequestKey("node_link", bool) if hasattr(web, "RequestKey") \
    else "node_link"


def over_node_link(request: web.Request) -> bool:
    """Whether the request came over mutual TLS from a node (a verified client certificate);
    worked out once per request."""
    known = request.get(NODE_LINK)
    if known is None:
        transport = request.transport
        tls = transport.get_extra_info("ssl_object") if transport is not None else None
        known = request[NODE_LINK] = tls is not None and bool(tls.getpeercert())
    return bool(known)


def make_guard(verifier: Verifier | None) -> Middleware:
    """The middleware; ``verifier`` None (no cluster key) refuses every non-loopback caller."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not is_protected(request.path) or not over_node_link(request):
            return await handler(request)
        if verifier is None:
            return _refuse(request, "this node has no cluster key and serves only loopback "
                                    "(see `hybrid-agent pair`)", "no_cluster_key")
        try:
            verifier.check_headers(request.raw_path, request.headers)
            body = await read_body(request) if request.body_exists else b""
            verifier.verify(request.method, request.raw_path, body, request.headers)
        except SignatureError as exc:
            return _refuse(request, str(exc), "bad_signature")
        return await handler(request)

    return guard


def _refuse(request: web.Request, message: str, code: str) -> web.Response:
    quiet = _REFUSALS.ready()
    if quiet is not None:
        log.warning("401 for %s %s from %s: %s%s", request.method, request.path[:200],
                    request.remote, message,
                    f" ({quiet} more refused since the last such line)" if quiet else "")
    return json_error(401, message, code=code, headers={"WWW-Authenticate": AUTH_SCHEME})
