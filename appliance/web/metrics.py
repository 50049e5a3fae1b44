"""Prometheus metrics: process metrics, request counts and latency per route, build info,
and whatever each component exports (the LLM engine, voice) at scrape time."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

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
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from appliance import __version__

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Metrics:
    """One registry per app, so several daemons in one test process do not collide."""

    def __init__(self, components: Callable[[], list[Any]] | None = None,
                 tier: str = "") -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(_ComponentCollector(components or list, tier))
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


class _ComponentCollector(Collector):
    """Build info, and each component's own families (``Component.metrics()``)."""

    def __init__(self, components: Callable[[], list[Any]], tier: str) -> None:
        self._components = components
        self._tier = tier

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("hybrid_agent_build_info", "Version of this daemon; always 1",
                                 labels=["version", "python", "tier"])
        info.add_metric([__version__, platform.python_version(), self._tier], 1)
        yield info
        for component in self._components():
            try:
                yield from component.metrics()
            except Exception:  # one broken exporter must not take /metrics down
                log.exception("metrics of component %s failed", getattr(component, "name", "?"))
