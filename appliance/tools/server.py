"""The "tools" component: the agent's tools and the tool server that serves tools to peers.

The tool server answers only signed requests, even from loopback: a tool
that runs shell commands must not be reachable by any local process that
can open a socket. It checks the sandbox at start; when bubblewrap cannot
create its namespaces here, the heavy tools are withdrawn (and the node says
why) instead of running unsandboxed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from appliance.config import Config
from appliance.errors import ApplianceError
from appliance.net.peer import PeerClient
from appliance.node import Component
from appliance.security.errors import SignatureError
from appliance.security.signing import Verifier
from appliance.tools.base import Tool
from appliance.tools.registry import ToolRegistry
from appliance.tools.remote import RemoteToolProxy
from appliance.tools.sandbox import Sandbox, SandboxUnavailable
from appliance.tools.timers import Timers

log = logging.getLogger(__name__)

SERVE_TIMEOUT_MARGIN_S = 1.0


class Unauthorized(ApplianceError):
    """The request to the tool server is not signed with the cluster key."""


class ToolServer(Component):
    """Holds the agent's tools (local and remote) and the served ones."""

    name = "tools"
    start_timeout_s = 15.0

    def __init__(self, config: Config, agent_tools: ToolRegistry, served: ToolRegistry,
                 timers: Timers, security: Any = None,
                 delegate: Callable[[], PeerClient] | None = None) -> None:
        self.config = config
        self.agent_tools = agent_tools
        self.served = served
        self.timers = timers
        self._security = security
        self._delegate = delegate
        self._verifier: Any = None
        self.problem = ""
        self.delegated_to = ""

    async def start(self) -> None:
        self.timers.resume()
        heavy = [t for t in (*_tools(self.served), *_tools(self.agent_tools))
                 if not t.light and not isinstance(t, RemoteToolProxy)]
        if not heavy:
            return
        try:
            await Sandbox(self.config.tools.sandbox).probe()
        except SandboxUnavailable as exc:
            self._fall_back(heavy, str(exc))

    async def stop(self) -> None:
        self.timers.suspend()
        for name in self.agent_tools.names():
            tool = self.agent_tools.get(name)
            if isinstance(tool, RemoteToolProxy):
                await tool.client.close()

    def describe(self) -> dict[str, Any]:
        return {"agent_tools": self.agent_tools.names(), "served": self.served.names(),
                "serving": self.config.tools.serve, "problem": self.problem or None,
                "delegated_to": self.delegated_to or None}

    def status_fragment(self) -> str:
        return f"tools: {self.problem}" if self.problem else ""

    def verify(self, method: str, path_qs: str, body: bytes, headers: Mapping[str, str]) -> None:
        """Return when the request is signed with the cluster key; Unauthorized otherwise."""
        if self._verifier is None:
            key = getattr(self._security, "key", None)
            if key is None:
                raise Unauthorized("this node has no cluster key, so it serves no tools")
            # Our own nonce memory: the LAN guard may already have checked this token.
            # Our own nonce memory, but the process's start: tokens from before it are replays.
            started = getattr(getattr(self._security, "verifier", None), "started_at", None)
            self._verifier = Verifier(key, str(getattr(self._security, "node_id", "")),
                                      replay_window_s=self.config.security.replay_window_s,
                                      started_at=started)
        try:
            self._verifier.verify(method, path_qs, body, headers)
        except SignatureError as exc:
            raise Unauthorized(str(exc)) from None

    async def serve(self, name: str, args: Any) -> dict[str, Any]:
        """Run a served tool for a peer; the observation (never raises)."""
        return await self.served.invoke(name, args,
                                        self.config.agent.tool_timeout_s + SERVE_TIMEOUT_MARGIN_S)

    def _fall_back(self, heavy: list[Tool], why: str) -> None:
        names = sorted({t.name for t in heavy})
        if self.config.tools.sandbox_fallback == "delegate" and self._delegate is not None:
            client = self._delegate()
            self.delegated_to = client.base_url()
            log.warning("tool server: %s; %s go to the tools-server at %s",
                        why, ", ".join(names), self.delegated_to)
            for registry in (self.served, self.agent_tools):
                for name in names:
                    tool = registry.get(name)
                    if tool is not None:
                        registry.replace(RemoteToolProxy(tool, client,
                                                         timeout_s=self.config.agent.tool_timeout_s))
            return
        self.problem = why
        log.error("tool server: %s; %s are withdrawn", why, ", ".join(names))
        for registry in (self.served, self.agent_tools):
            for name in names:
                registry.remove(name)


def _tools(registry: ToolRegistry) -> list[Tool]:
    return [t for t in (registry.get(n) for n in registry.names()) if t is not None]
