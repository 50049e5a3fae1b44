"""Which tools exist on this node and where each one runs: ``create_tools(config, ...)``.

Per tool, ``tools.placement``: ``local`` -> the in-process class; ``remote`` ->
a :class:`RemoteToolProxy` to a trusted core's tool server; ``auto`` (the
default) -> local when the tool is light, or when it is heavy and this node
serves tools itself; else remote. Heavy tools never run in-process on a node
that does not serve them (an edge).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from appliance.config import Config
from appliance.errors import ApplianceError
from appliance.net.peer import PeerClient
from appliance.tools.base import Tool
from appliance.tools.calculator import Calculator
from appliance.tools.clock import Clock
from appliance.tools.python_runner import PythonRunner
from appliance.tools.registry import ToolRegistry
from appliance.tools.remote import RemoteToolProxy
from appliance.tools.sandbox import Sandbox
from appliance.tools.shell import Shell
from appliance.tools.timers import Timers
from appliance.tools.world_tools import WorldDelete, WorldGet, WorldList, WorldSet
from appliance.world.model import WorldModel

#: Every tool this code knows, by name.
TOOL_CLASSES: dict[str, type[Tool]] = {cls.name: cls for cls in (
    Calculator, Clock, Timers, WorldGet, WorldSet, WorldDelete, WorldList, Shell, PythonRunner)}
WORLD_TOOLS = ("world_get", "world_set", "world_delete", "world_list")


class ToolConfigError(ApplianceError):
    """The tools section asks for something this node cannot do; the message says what."""


def create_tools(config: Config, *, world: WorldModel | None,
                 remote: Callable[[], PeerClient] | None,
                 timers: Timers | None = None) -> tuple[ToolRegistry, ToolRegistry]:
    """(the agent's tools, the tools this node serves to peers).

    ``remote`` makes the client for remote tools; ``timers`` is the shared
    timer service (one per node so the voice pipeline hears them fire).
    """
    tcfg = config.tools
    sandbox = Sandbox(tcfg.sandbox)
    timers = timers or Timers(timezone=tcfg.timezone)
    agent, served = ToolRegistry(), ToolRegistry()
    names = list(dict.fromkeys([*tcfg.enabled, *(("shell", "python") if tcfg.serve else ())]))
    for name in names:
        cls = TOOL_CLASSES.get(name)
        if cls is None:
            raise ToolConfigError(f"tools.enabled: unknown tool {name!r}; known: "
                                  f"{', '.join(sorted(TOOL_CLASSES))}")
        placement = tcfg.placement.get(name, "auto")  # one of config.PLACEMENTS
        local_ok = cls.light or tcfg.serve
        if placement == "local" and not local_ok:
            raise ToolConfigError(f"tools.placement.{name}: {name} is a heavy tool and runs "
                                  "only where tools.serve is true (a tool server)")
        in_process = placement == "local" or (placement == "auto" and local_ok)
        tool: Tool | None = None
        if in_process:
            tool = _local(cls, config, world, sandbox, timers)
            if tool is not None and tcfg.serve:
                served.add(tool)
        elif remote is not None:
            tool = RemoteToolProxy(cls, remote(), timeout_s=config.agent.tool_timeout_s)
        if tool is not None and name in tcfg.enabled:
            agent.add(tool)
    return agent, served


#: The name of the cluster key among the credentials systemd hands the tools unit.
KEY_CREDENTIAL = "cluster.key"


def tools_server_config(cfg: Config, credentials: Path | None = None) -> Config:
    """The config of `hybrid-agent tools-server`: the tool server alone, on loopback; the
    cluster key from ``credentials`` (``$CREDENTIALS_DIRECTORY``) when systemd put it there."""
    r = dataclasses.replace
    if credentials is not None and (credentials / KEY_CREDENTIAL).is_file():
        cfg = r(cfg, security=r(cfg.security,
                                cluster_key_file=str(credentials / KEY_CREDENTIAL)))
    return r(cfg,
             http=r(cfg.http, host="127.0.0.1", port=cfg.tools.server_port),
             discovery=r(cfg.discovery, enabled=False),
             llm=r(cfg.llm, mode="off", serve=False),
             voice=r(cfg.voice, enabled=False),
             world=r(cfg.world, mode="off", serve=False),
             tools=r(cfg.tools, serve=True, enabled=[], sandbox_fallback="withdraw"))


def _local(cls: type[Tool], config: Config, world: WorldModel | None, sandbox: Sandbox,
           timers: Timers) -> Tool | None:
    if cls.name in WORLD_TOOLS:
        return cls(world) if world is not None else None  # type: ignore[call-arg]
    if cls is Clock:
        return Clock(config.tools.timezone)
    if cls is Timers:
        return timers
    if cls in (Shell, PythonRunner):
        return cls(sandbox)
    return cls()
