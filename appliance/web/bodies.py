"""Request bodies: a size limit per route, and reading within a time limit.

Every route accepts at most ``http.max_json_bytes`` unless its ``setup()``
asks for more with :func:`set_body_limit` (audio uploads, world values); no
route gets more than ``http.max_body_bytes``. :func:`body_limit_middleware`
answers 413 at once to a ``Content-Length`` over the route's limit; it runs
after the request guard, so an unsigned LAN request is a 401 whatever it
announces. :func:`read_body` (which :func:`read_json` and the guard use)
stops a chunked body (no length announced) with the same 413 after at most
limit+1 bytes, and reads within ``http.body_timeout_s``, so a body that
trickles in byte by byte cannot hold a connection open (408). A plain
``request.read()`` is still bounded by ``http.max_body_bytes``.

These are small functions on purpose: the LAN trust work moves them into
its own middleware.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance import jsonbounds
from appliance.web.errors import ApiError

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
JSON_BYTES_PER_CHAR = 12
READ_PIECE = 1 << 16

@dataclass(frozen=True)
class BodyRules:
    """The limits every route starts from (from the ``http`` config section)."""

    default_bytes: int
    """What a route that asked for nothing more accepts (JSON control routes)."""
    max_bytes: int
    """What no route may exceed."""
    timeout_s: float
    """How long a whole body may take to arrive."""


BODY_RULES = web.AppKey("body_rules", BodyRules)


@dataclass(frozen=True)
class RouteLimit:
    """A route's own limit, and what a 413 for it says."""

    bytes: int
    code: str = "body_too_large"
    setting: str = ""
    """The config key that sets the limit, named in the 413."""


BODY_LIMITS = web.AppKey("body_limits", dict[tuple[str, str], RouteLimit])


class BodyError(ApiError):
    """A body that is too large or too slow (413, 408): answered, then the connection closed."""

    def response(self) -> web.Response:
        resp = super().response()
        # The rest of the body is not worth waiting for: close instead of draining it.
        resp.force_close()
        return resp


def install(app: web.Application, rules: BodyRules) -> None:
    """Give ``app`` its body rules (create_app does this)."""
    app[BODY_RULES] = rules
    app[BODY_LIMITS] = {}


def set_body_limit(app: web.Application, method: str, path: str, limit: int, *,
                   code: str = "body_too_large", setting: str = "") -> None:
    """Let ``method path`` (the route as added, e.g. ``/api/world/{key}``) take ``limit`` bytes;
    its 413 has ``code`` and names the config key ``setting``."""
    app[BODY_LIMITS][(method.upper(), path)] = RouteLimit(limit, code, setting)


def json_text_limit(chars: int, overhead: int = 4096) -> int:
    """Bytes of a JSON body carrying ``chars`` characters of text, each escaped at worst
    (``\\ud83d\\ude00`` is 12 bytes for one character)."""
    return JSON_BYTES_PER_CHAR * chars + overhead


def route_body_limit(request: web.Request) -> RouteLimit:
    """The most bytes this request's route accepts (never over ``http.max_body_bytes``)."""
    rules = request.app[BODY_RULES]
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else ""
    own = request.app[BODY_LIMITS].get((request.method, path))
    if own is None:
        return RouteLimit(min(rules.default_bytes, rules.max_bytes), setting="http.max_json_bytes")
    if own.bytes > rules.max_bytes:
        return RouteLimit(rules.max_bytes, own.code, "http.max_body_bytes")
    return own


def too_large(limit: RouteLimit | int, size: int | None = None) -> BodyError:
    """The 413 for a body over ``limit``; ``size`` when it was announced."""
    if isinstance(limit, int):
        limit = RouteLimit(limit, setting="http.max_body_bytes")
    said = f" (it is {size} bytes)" if size is not None else ""
    where = f" ({limit.setting})" if limit.setting else ""
    return BodyError(413, f"request body is larger than {limit.bytes} bytes{said}: this route "
                          f"accepts at most {limit.bytes} bytes{where}", code=limit.code)


def body_limit_middleware() -> Any:
    """413 at once for an announced body over its route's limit (before any handler reads)."""

    @web.middleware
    async def body_limit(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.content_length is not None:
            limit = route_body_limit(request)
            if request.content_length > limit.bytes:
                return too_large(limit, request.content_length).response()
        return await handler(request)

    return body_limit


async def read_body(request: web.Request) -> bytes:
    """The whole body within the route's size and time limits, else BodyError (413/408).

    Read once; later calls (and ``request.read()``) return the same bytes.
    """
    if request.content.at_eof() or not request.body_exists:
        return await request.read()  # read before (cached), or no body at all
    limit = route_body_limit(request)
    if request.content_length is not None and request.content_length > limit.bytes:
        raise too_large(limit, request.content_length)
    timeout_s = request.app[BODY_RULES].timeout_s
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while piece := await request.content.read(READ_PIECE):
                size += len(piece)
                if size > limit.bytes:  # a chunked body, which announced no length
                    raise too_large(limit)
                parts.append(piece)
    except TimeoutError:
        raise BodyError(408, f"the request body did not arrive within {timeout_s:g} s "
                             "(http.body_timeout_s)", code="body_timeout") from None
    body = b"".join(parts)
    # aiohttp's own cache of the body: what request.read() returns from now on.
    request._read_bytes = body
    return body


async def read_json(request: web.Request) -> Any:
    """The body as JSON (bounded in size, time and depth), or an ApiError saying what was wrong."""
    body = await read_body(request)
    try:
        return jsonbounds.loads(body)
    except jsonbounds.JsonTooDeep as exc:
        raise ApiError(400, f"request body: {exc}", code="json_too_deep") from None
    except ValueError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}",
                       code="invalid_json") from None
