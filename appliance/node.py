"""The running node: identity, its components, readiness and in-flight work.

A :class:`Component` is one part the daemon starts and stops (the LLM engine,
discovery, voice, ...). The :class:`Node` holds them and answers the questions
``/health``, ``/api/status``, the watchdog and the STATUS= line ask.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from appliance import __version__
from appliance.config import Config
from appliance.hardware import CpuFeatures


class Component:
    """A part of the daemon with a lifecycle; subclasses override what they need."""

    name = "component"
    #: Seconds ``start`` may take; the daemon extends systemd's start timeout by this.
    start_timeout_s = 30.0

    async def start(self) -> None:
        """Load and start; raise to fail the daemon's start."""

    async def stop(self) -> None:
        """Stop; must not raise."""

    def healthy(self) -> bool:
        """False withholds the watchdog ping, so systemd restarts a broken node."""
        return True

    def describe(self) -> dict[str, Any]:
        """What /api/status shows about this component."""
        return {}

    def status_fragment(self) -> str:
        """A short phrase for systemd's STATUS= line, or ''."""
        return ""

    def metrics(self) -> Iterable[Any]:
        """Prometheus metric families of this component, collected at each scrape."""
        return ()


class Node:
    """Runtime state shared by the daemon and the HTTP handlers."""

    def __init__(self, config: Config, node_id: str) -> None:
        self.config = config
        self.node_id = node_id
        self.started_monotonic = time.monotonic()
        self.components: dict[str, Component] = {}
        self.ready = False
        self.stopping = False
        self.phase = "starting"
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.extra_roles: set[str] = set()
        self.status_hooks: list[Callable[[], str]] = []
        self.cpu: CpuFeatures | None = None
        """The CPU features as this process reads them (set by the daemon at start)."""

    # ------------------------------------------------------------ identity

    @property
    def name(self) -> str:
        return self.config.node.name

    @property
    def tier(self) -> str:
        return self.config.node.tier

    @property
    def version(self) -> str:
        return __version__

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_monotonic

    @property
    def roles(self) -> list[str]:
        """What this node offers to the LAN: llm, tools, world, voice."""
        cfg = self.config
        roles = set(self.extra_roles)
        llm = self.components.get("llm")
        # A split model (appliance.llm.rpc.split) may be unserved while its workers are gone.
        if cfg.llm.serve and cfg.llm.mode in ("local", "auto") and llm is not None \
                and getattr(llm, "serving", True):
            roles.add("llm")
        if cfg.tools.serve and "tools" in self.components:
            roles.add("tools")
        if cfg.world.serve and cfg.world.mode == "local" and "world" in self.components:
            roles.add("world")
        if cfg.voice.enabled and "voice" in self.components:
            roles.add("voice")
        return sorted(roles)

    # ------------------------------------------------------------ components

    def add(self, component: Component) -> None:
        if component.name in self.components:
            raise ValueError(f"component {component.name!r} added twice")
        self.components[component.name] = component

    def get(self, name: str) -> Any:
        """The component called ``name``, or None."""
        return self.components.get(name)

    def healthy(self) -> bool:
        return all(c.healthy() for c in self.components.values())

    def unhealthy(self) -> list[str]:
        return [name for name, c in self.components.items() if not c.healthy()]

    # ------------------------------------------------------------ in-flight work

    def begin_request(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def end_request(self) -> None:
        self.inflight -= 1
        if self.inflight <= 0:
            self.inflight = 0
            self._idle.set()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no request is in flight; False when ``timeout_s`` ran out first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    # ------------------------------------------------------------ reporting

    def status_line(self) -> str:
        """One line for systemd's STATUS=: what the node is doing."""
        parts = [f"{self.tier}: {self.phase}"]
        for c in self.components.values():
            frag = c.status_fragment()
            if frag:
                parts.append(frag)
        for hook in self.status_hooks:
            frag = hook()
            if frag:
                parts.append(frag)
        if self.ready:
            parts.append(f"{self.inflight} in flight")
        return "; ".join(parts)

    def health(self) -> dict[str, Any]:
        status = "ok" if self.ready and not self.stopping else self.phase
        return {"status": status, "ready": self.ready and not self.stopping,
                "phase": self.phase, "id": self.node_id, "name": self.name, "tier": self.tier,
                "version": self.version, "unhealthy": self.unhealthy()}

    def status(self) -> dict[str, Any]:
        peers = self.get("discovery")
        return {
            "id": self.node_id,
            "name": self.name,
            "tier": self.tier,
            "roles": self.roles,
            "version": self.version,
            "uptime_s": round(self.uptime_s, 3),
            "ready": self.ready and not self.stopping,
            "phase": self.phase,
            "status": self.status_line(),
            "inflight": self.inflight,
            "components": {
                name: {"healthy": c.healthy(), **c.describe()}
                for name, c in self.components.items()
            },
            "peers": peers.peer_summaries() if peers is not None else [],
            "cpu": self.cpu.to_dict() if self.cpu is not None else None,
        }
