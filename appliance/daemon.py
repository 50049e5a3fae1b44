"""The daemon: runs the lifecycle of the parts :mod:`appliance.composition` builds.

Order: bind the HTTP port (``/health`` answers 503 while loading), start the
components one by one (extending systemd's start timeout while each loads),
READY=1, then watchdog pings and STATUS= updates from tasks on the event loop
until SIGTERM/SIGINT, then STOPPING=1, drain in-flight requests within
``http.shutdown_grace_s``, stop the components and exit 0.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web

from appliance import hardware
from appliance.composition import Composition
from appliance.config import Config
from appliance.errors import ApplianceError
from appliance.logs import RateLimit
from appliance.node import Component, Node
from appliance.security.identity import load_or_create_node_id
from appliance.systemd import Notifier
from appliance.tasks import cancel_and_wait
from appliance.web.app import create_app
from appliance.web.connections import (
    ConnectionGate,
    connection_limits,
    inherited_socket,
    quiet_malformed_requests,
)
from appliance.web.listener import FrontDoor

log = logging.getLogger(__name__)

STATUS_REFRESH_S = 1.0
# Extra start time asked of systemd beyond each component's own estimate.
EXTEND_MARGIN_S = 15.0
EXIT_OK = 0
EXIT_START_FAILED = 1
# A start that cannot succeed by retrying (the unit's RestartPreventExitStatus): a model
# whose warm-up crashed llama.cpp with these very settings (llm/engine/warmup.py).
EXIT_WOULD_CRASH = 3


class StartupError(ApplianceError):
    """The daemon could not start; the message says why in words."""

    def __init__(self, message: str, exit_status: int = EXIT_START_FAILED) -> None:
        super().__init__(message)
        self.exit_status = exit_status


class Watchdog:
    """Pings WATCHDOG=1 from a task on the event loop while the node is healthy.

    Because the pings come from the loop itself, a blocked loop stops them and
    systemd restarts the service.
    """

    def __init__(self, notifier: Notifier, healthy: Callable[[], bool],
                 interval_s: float | None = None) -> None:
        self._notifier = notifier
        self._healthy = healthy
        self.interval_s = interval_s if interval_s is not None else notifier.watchdog_interval_s
        self._task: asyncio.Task[None] | None = None
        self.pings = 0

    def start(self) -> None:
        if self.interval_s is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="watchdog")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    async def _run(self) -> None:
        assert self.interval_s is not None
        withheld = False
        while True:
            if self._healthy():
                self._notifier.watchdog()
                self.pings += 1
                withheld = False
            elif not withheld:
                log.error("withholding the watchdog ping: a component is unhealthy")
                withheld = True
            await asyncio.sleep(self.interval_s)


class LoopErrors:
    """The event loop's exception handler: the default one, except that errors caused from
    outside (a full descriptor table while accepting, a reset connection) are logged at most
    once per ``interval_s`` per kind, with a count, without a traceback each."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._limits: dict[str, RateLimit] = {}

    def handle(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not isinstance(exc, OSError):
            loop.default_exception_handler(context)
            return
        kind = f"{context.get('message', 'error')}: {exc.strerror or exc}"
        limit = self._limits.setdefault(kind, RateLimit(self.interval_s))
        quiet = limit.ready()
        if quiet is not None:
            log.error("%s%s", kind, f" ({quiet} more since the last such line)" if quiet else "")


class Daemon:
    """One node's process: HTTP, components, systemd protocol."""

    def __init__(self, config: Config, notifier: Notifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        node_id = load_or_create_node_id(config.node.state_path)
        self.node = Node(config, node_id)
        self._stop = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._status_sent = ""
        self.watchdog = Watchdog(self.notifier, self.node.healthy)
        self.parts = Composition(config, self.node)

    def add_component(self, component: Component) -> None:
        """One more component, started after the configured ones (tests add their own)."""
        self.parts.add_component(component)

    # ------------------------------------------------------------ lifecycle

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        """Run until asked to stop; the exit status."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.set_exception_handler(LoopErrors().handle)
        quiet_malformed_requests()
        try:
            await self._start()
        except StartupError as exc:
            log.error("%s", exc)
            # The failure stays the last STATUS= (what `systemctl status` shows afterwards).
            await self._shutdown(f"failed: {exc}")
            return exc.exit_status
        status_task = loop.create_task(self._status_loop(), name="status")
        await self._stop.wait()
        await cancel_and_wait([status_task])
        await self._shutdown()
        return EXIT_OK

    async def _start(self) -> None:
        node = self.node
        app = create_app(node, self.parts.middlewares)
        for setup in self.parts.route_setups:
            setup(app)
        http = self.config.http
        # keepalive_timeout runs from the accept on: it also closes silent and half-sent
        # connections (appliance.web.connections).
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None,
                                     shutdown_timeout=http.shutdown_grace_s,
                                     keepalive_timeout=http.idle_timeout_s)
        await self._runner.setup()
        host, port = http.host, http.port
        security = node.get("security")
        web_tls = security.web.server_context() if security and security.web else None

        def node_tls() -> Any:
            tls = getattr(security, "node_tls", None)
            return tls.server_context() if tls is not None else None

        # One port: loopback HTTP, HTTPS for browsers, mutual TLS for nodes (web/listener.py),
        # each connection through the gate that caps them (web/connections.py).
        assert self._runner.server is not None
        gate = ConnectionGate(connection_limits(http.max_connections,
                                                http.max_connections_per_client),
                              self._runner.server)
        site = FrontDoor(self._runner, host, port, web_tls=lambda: web_tls, node_tls=node_tls,
                         protocol_factory=gate, gate=gate, sock=inherited_socket(),
                         first_bytes_s=http.idle_timeout_s)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                               "(is another hybrid-agent running? change http.port)") from None
        log.info("listening on %s/ as %s (%s tier, id %s)", site.name, node.name,
                 node.tier, node.node_id)
        # What the inference libraries will see of the CPU inside this unit (issue 21).
        node.cpu = hardware.cpu_features()
        (log.warning if node.cpu.problem else log.info)("cpu: %s", node.cpu.summary())
        self.notifier.status(node.status_line())
        for component in list(node.components.values()):
            node.phase = f"loading {component.name}"
            self.notifier.extend_timeout(component.start_timeout_s + EXTEND_MARGIN_S,
                                         node.status_line())
            if self._stop.is_set():
                raise StartupError("stopped while starting")
            log.debug("starting component %s (allowed %.0fs)", component.name,
                      component.start_timeout_s)
            try:
                await component.start()
            except Exception as exc:
                log.exception("component %s failed to start", component.name)
                # A component may say that retrying cannot help (its exit_status).
                raise StartupError(f"{component.name} failed to start: {exc}",
                                   getattr(exc, "exit_status", EXIT_START_FAILED)) from exc
        node.phase = "ready"
        node.ready = True
        self._status_sent = node.status_line()
        self.notifier.ready(self._status_sent)
        self.watchdog.start()
        log.info("ready: %s", node.status_line())

    async def _status_loop(self) -> None:
        """Send STATUS= whenever the line differs from the last one sent (READY's included)."""
        last = self._status_sent
        while True:
            line = self.node.status_line()
            if line != last:
                self.notifier.status(line)
                last = line
            await asyncio.sleep(STATUS_REFRESH_S)

    async def _shutdown(self, status: str = "") -> None:
        """Drain and stop; ``status``, if given, is the STATUS= line instead of 'stopping'."""
        node = self.node
        node.stopping = True
        node.phase = "stopping"
        self.notifier.stopping(status or
                               f"{node.tier}: stopping; draining {node.inflight} request(s)")
        log.info("stopping: draining %d in-flight request(s)", node.inflight)
        if not await node.drain(self.config.http.shutdown_grace_s):
            log.warning("grace of %.1fs ran out with %d request(s) in flight",
                        self.config.http.shutdown_grace_s, node.inflight)
        await self.watchdog.stop()
        for component in reversed(list(node.components.values())):
            log.debug("stopping component %s", component.name)
            try:
                await component.stop()
            except Exception:
                log.exception("component %s failed to stop cleanly", component.name)
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("stopped")


def run(config: Config) -> int:
    """Run the daemon in the foreground; the process exit status."""
    # A crash in native code (llama.cpp, onnxruntime) then leaves every thread's Python
    # stack in the journal, not only "code=dumped, signal=SEGV". Best effort: when two
    # native threads fault together (a parallel kernel), faulthandler has restored the
    # default action before it writes, and the second fault can end the process first;
    # the component's "loading and warming up" line before each risky step stays.
    faulthandler.enable()
    return asyncio.run(Daemon(config).run())
