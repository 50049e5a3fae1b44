"""The aiohttp application: middlewares, /health, /metrics, /api/status.

Other parts add their routes with their own ``setup(app, ...)`` functions;
the daemon wires them. Middlewares run outermost first: metrics, errors,
in-flight tracking (which refuses new work while stopping), any the daemon
adds (request signing), then body limits (appliance.web.bodies).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from appliance.node import Node
from appliance.web import bodies
from appliance.web.errors import MAX_BODY, ApiError, json_error
from appliance.web.metrics import Metrics, now

log = logging.getLogger(__name__)

NODE = web.AppKey("node", Node)
METRICS = web.AppKey("metrics", Metrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

# Paths that answer even while the node is starting or stopping.
ALWAYS_OPEN = ("/health", "/metrics", "/api/status")


def create_app(node: Node, extra_middlewares: list[Middleware] | None = None) -> web.Application:
    """Build the app for ``node``; routes of other parts are added by the caller."""
    metrics = Metrics(lambda: list(node.components.values()), node.tier)

    @web.middleware
    async def metrics_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = now()
        status = 500
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.observe(request, status, now() - start)

    @web.middleware
    async def errors_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except web.HTTPRequestEntityTooLarge:
            return bodies.too_large(request.app[MAX_BODY]).response()
        except web.HTTPException as exc:
            if exc.status < 400 or exc.content_type == "application/json":
                raise
            return json_error(exc.status, exc.reason or "error", headers=_keep(exc.headers))

    @web.middleware
    async def inflight_mw(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in ALWAYS_OPEN or request.path.startswith("/static/"):
            return await handler(request)
        if node.stopping:
            return json_error(503, "the node is shutting down", code="stopping",
                              headers={"Retry-After": "5"})
        node.begin_request()
        try:
            return await handler(request)
        finally:
            node.end_request()

    http = node.config.http
    # Body limits after the daemon's own (the guard): unsigned is a 401 whatever it announces.
    middlewares: list[Any] = [metrics_mw, errors_mw, inflight_mw, *(extra_middlewares or []),
                              bodies.body_limit_middleware()]
    app = web.Application(client_max_size=http.max_body_bytes, middlewares=middlewares)
    bodies.install(app, bodies.BodyRules(default_bytes=http.max_json_bytes,
                                         max_bytes=http.max_body_bytes,
                                         timeout_s=http.body_timeout_s))
    app[NODE] = node
    app[METRICS] = metrics
    app[MAX_BODY] = http.max_body_bytes
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/api/status", status)
    return app


async def health(request: web.Request) -> web.Response:
    """200 when ready, 503 (same shape) while starting or stopping."""
    node = request.app[NODE]
    body = node.health()
    return web.json_response(body, status=200 if body["ready"] else 503)


async def metrics_handler(request: web.Request) -> web.Response:
    node = request.app[NODE]
    metrics = request.app[METRICS]
    metrics.inflight.set(node.inflight)
    metrics.ready.set(1 if node.ready and not node.stopping else 0)
    return metrics.render()


async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[NODE].status())


def _keep(headers: object) -> dict[str, str] | None:
    allowed = {"Allow", "Retry-After", "WWW-Authenticate"}
    items = getattr(headers, "items", None)
    if items is None:
        return None
    kept = {k: v for k, v in items() if k in allowed}
    return kept or None
