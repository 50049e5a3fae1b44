"""The world model over HTTP: REST with compare-and-set, and an SSE change feed.

- ``GET /api/world[?prefix=P&limit=N]`` -> ``{"version", "entries": [{"key", "value",
  "version"}], "truncated"}``
- ``GET /api/world/{key}`` -> the entry (``ETag`` is its version) or 404
- ``PUT /api/world/{key}`` body: the JSON value -> the entry; ``If-Match: <version>``
  makes it a compare-and-set (``0`` = only if absent), 412 when the version moved on
- ``DELETE /api/world/{key}`` -> ``{"key", "version"}``; ``If-Match`` as for PUT
- ``GET /api/world/events`` -> SSE, one ``event: change`` per write after connecting

Peers other than loopback get the world model only where ``world.serve`` is on (403).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

from appliance.web.access import is_peer
from appliance.web.app import NODE
from appliance.web.bodies import json_text_limit, read_json, set_body_limit
from appliance.web.errors import ApiError
from appliance.world.model import Change, VersionConflict, WorldError, WorldModel

#: Seconds between SSE keep-alive comments (and checks for shutdown).
HEARTBEAT_S = 1.0
KEEPALIVE_EVERY = 15
#: Most entries one listing returns; ``?prefix=`` narrows it.
MAX_LISTED = 10000
T = TypeVar("T")
_DIGITS = re.compile(r"[0-9]{1,19}")


def setup(app: web.Application) -> None:
    """Add the world routes; the world component is looked up per request."""
    app.router.add_get("/api/world", list_entries)
    app.router.add_get("/api/world/events", events)
    app.router.add_get("/api/world/{key}", get_entry)
    app.router.add_put("/api/world/{key}", put_entry)
    set_body_limit(app, "PUT", "/api/world/{key}",
                   json_text_limit(app[NODE].config.world.max_value_bytes),
                   setting="world.max_value_bytes")
    app.router.add_delete("/api/world/{key}", delete_entry)


async def list_entries(request: web.Request) -> web.Response:
    world = _world(request)
    prefix = request.query.get("prefix", "")
    limit = _whole_number(request.query.get("limit", str(MAX_LISTED)))
    if limit is None or not 1 <= limit <= MAX_LISTED:
        raise ApiError(400, f"limit must be a whole number from 1 to {MAX_LISTED}",
                       code="invalid_request", param="limit")
    entries = [e for e in await _call(world.items()) if e.key.startswith(prefix)]
    return web.json_response({"version": getattr(world, "version", None),
                              "entries": [e.to_json() for e in entries[:limit]],
                              "truncated": len(entries) > limit})


async def get_entry(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    entry = await _call(_world(request).get(key))
    if entry is None:
        raise ApiError(404, f"no key {key!r} in the world model", code="not_found")
    return web.json_response(entry.to_json(), headers={"ETag": str(entry.version)})


async def put_entry(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    expected = _if_match(request)
    value = await read_json(request)
    entry = await _call(_world(request).set(key, value, expected))
    return web.json_response(entry.to_json(), headers={"ETag": str(entry.version)})


async def delete_entry(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    version = await _call(_world(request).delete(key, _if_match(request)))
    return web.json_response({"key": key, "version": version})


async def events(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    sub = _world(request).subscribe()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    await resp.write(b": subscribed\n\n")
    changes = sub.__aiter__()
    # One pending read at a time, never cancelled by the heartbeat: cancelling an
    # async generator's __anext__ would end the generator.
    pending: asyncio.Future[Change] | None = None
    idle = 0
    try:
        while not node.stopping:
            if pending is None:
                pending = asyncio.ensure_future(anext(changes))
            done, _ = await asyncio.wait({pending}, timeout=HEARTBEAT_S)
            if not done:
                idle += 1
                if idle >= KEEPALIVE_EVERY:
                    idle = 0
                    await resp.write(b": keep-alive\n\n")
                continue
            try:
                change = pending.result()
            except StopAsyncIteration:
                break
            pending = None
            idle = 0
            data = json.dumps(change.to_json(), separators=(",", ":"))
            await resp.write(f"event: change\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        pass
    finally:
        sub.close()
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(Exception):
            await changes.aclose()  # type: ignore[attr-defined]
    return resp


def _world(request: web.Request) -> WorldModel:
    node = request.app[NODE]
    world = node.get("world")
    if world is None:
        raise ApiError(503, "the world model is off on this node (world.mode)",
                       code="world_off")
    if not node.config.world.serve and is_peer(request):
        # Peers (already signed, see the guard) may use it only where world.serve is on.
        raise ApiError(403, "this node does not serve its world model to peers (world.serve)",
                       code="world_not_served")
    return world


async def _call(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except VersionConflict as exc:
        raise ApiError(412, str(exc), code=exc.code, param=str(exc.actual),
                       headers={"ETag": str(exc.actual)}) from None
    except WorldError as exc:
        raise ApiError(exc.status, str(exc), code=exc.code) from None


def _if_match(request: web.Request) -> int | None:
    raw = request.headers.get("If-Match")
    if raw is None:
        return None
    version = _whole_number(raw.strip().strip('"'))
    if version is None:
        raise ApiError(400, f"If-Match must be a version number, found {raw[:40]!r}",
                       code="invalid_if_match", param="If-Match")
    return version


def _whole_number(text: str) -> int | None:
    """ASCII digits only (``str.isdigit`` also takes "²", which ``int()`` refuses)."""
    return int(text) if _DIGITS.fullmatch(text) else None
