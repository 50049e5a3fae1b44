"""Prometheus metrics: process metrics plus request counts and latency per route."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    """One registry per app, so several daemons in one test process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter("hybrid_agent_http_requests_total", "HTTP requests served",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("hybrid_agent_http_request_duration_seconds",
                                 "HTTP request latency until the response started or ended",
                                 ["route", "method"], registry=self.registry)
        self.inflight = Gauge("hybrid_agent_inflight_requests", "Requests in flight",
                              registry=self.registry)
        self.ready = Gauge("hybrid_agent_ready", "1 when the node is ready",
                           registry=self.registry)

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        info = request.match_info.route.resource
        route = info.canonical if info is not None else "unmatched"
        self.requests.labels(route, request.method, str(status)).inc()
        self.latency.labels(route, request.method).observe(seconds)

    def render(self) -> web.Response:
        resp = web.Response(body=generate_latest(self.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp


def now() -> float:
    return time.perf_counter()
