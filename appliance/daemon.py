"""Composition root: builds what the config asks for and runs the lifecycle.

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
from appliance.config import Config
from appliance.errors import ApplianceError
from appliance.logs import RateLimit
from appliance.node import Component, Node
from appliance.security.identity import load_or_create_node_id
from appliance.systemd import Notifier
from appliance.tasks import cancel_and_wait
from appliance.web.app import Middleware, create_app
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
        self._middlewares: list[Middleware] = []
        self._route_setups: list[Callable[[web.Application], None]] = []
        self._stop = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._status_sent = ""
        self.watchdog = Watchdog(self.notifier, self.node.healthy)
        self._compose()

    # ------------------------------------------------------------ composition

    def _compose(self) -> None:
        """Add the components and routes the config asks for, in start order."""
        self._compose_security()
        self._compose_world()
        self._compose_llm()
        self._compose_rpc_worker()
        self._compose_tools()
        self._compose_agent()
        self._compose_voice()
        self._compose_discovery()
        self._compose_ui()

    # Each part wires itself in its own method below; only these read the tier's choices.

    def _compose_security(self) -> None:
        """Cluster key, node TLS, request signing; people's sign-in, Host and Origin checks."""
        from appliance.security.cluster import Security
        from appliance.security.devices import DeviceStore
        from appliance.web import access, origin, owners, signin
        from appliance.web.guard import make_guard

        cfg = self.config
        security = Security(cfg.security, node_id=self.node.node_id,
                            state_dir=cfg.node.state_path, http=cfg.http)
        self.add_component(security)
        devices = DeviceStore(cfg.node.state_path)
        # Who is asking (plain HTTP from the LAN is sent to HTTPS before anything else), then
        # whether Host and Origin are the box's own, then the signature of a peer's request.
        self.add_middleware(access.make_access(devices, lambda: security.node_tls,
                                               list(cfg.http.metrics_clients)))
        self.add_middleware(origin.make_origin_check(origin.BoxNames(self._box_names())))
        self.add_middleware(make_guard(security.verifier))
        self.add_routes(lambda app: signin.setup(app, devices, security.web))
        self.add_routes(owners.setup)

    def _box_names(self) -> list[str]:
        """The names a Host header may carry for this box (its addresses count too)."""
        import socket

        from appliance.discovery.advertise import mdns_host
        from appliance.discovery.component import host_label_of

        host = socket.gethostname()
        short = host.split(".")[0]
        return [host, short, f"{short}.local", mdns_host(host_label_of(self.node)),
                *self.config.http.names]

    def _registry(self) -> Any:
        """The discovery registry, or None; asked per request, as discovery starts after the
        parts that pick peers from it."""
        return getattr(self.node.get("discovery"), "registry", None)

    def _compose_world(self) -> None:
        """The world model, local or remote (agent issue)."""
        from appliance.net import peer, peers
        from appliance.web import world_api

        cfg = self.config.world
        if cfg.mode == "off":
            return
        if cfg.mode == "local":
            from appliance.world.store import LocalWorld

            world: Component = LocalWorld(self.config.node.state_path / "world",
                                          compact_after=cfg.compact_after,
                                          max_value_bytes=cfg.max_value_bytes)
        else:
            from appliance.world.remote import RemoteWorld

            static = [peers.endpoint(cfg.endpoint)] if cfg.endpoint else []
            world = RemoteWorld(peer.PeerClient.over(
                peers.Selection("world", self._registry, static),
                peer.signer_for(self.node), peer.node_tls_for(self.node)))
        self.add_component(world)
        self.add_routes(world_api.setup)

    def _compose_llm(self) -> None:
        """The LLM engine, router and OpenAI-compatible API (LLM issue)."""
        from appliance.llm import router as llm_router
        from appliance.net import peer, peers
        from appliance.web import openai_api

        cfg, node = self.config.llm, self.node
        # /v1/* answers everywhere; with llm.mode off it says 503 no_llm_available.
        self.add_routes(openai_api.setup)
        if cfg.rpc_workers and cfg.mode not in ("local", "auto"):
            from appliance.config import ConfigError

            raise ConfigError(self.config.source, "llm.rpc_workers", "splits this box's own "
                              f"model over workers: it needs llm.mode local or auto, not "
                              f"{cfg.mode}")
        if cfg.mode == "off":
            return
        from appliance.models import llm_model_note

        note = llm_model_note(self.config)
        if note:
            log.warning("%s", note)
        engine = None
        if cfg.mode == "local" or (cfg.mode == "auto" and (
                cfg.model or self.config.llm_model_path.is_file())):
            from appliance.llm.engine import Engine, EngineSettings

            settings = EngineSettings.from_config(self.config)
            engine = self._split_engine(settings) if cfg.rpc_workers else Engine(settings)
            self.add_component(engine)
        # The endpoints' URLs are checked by the config.
        llm = peers.Selection("llm", self._registry, llm_router.static_peers(list(cfg.endpoints)))
        self.add_component(llm_router.Router(cfg, engine, llm.peers, peer.signer_for(node),
                                             llm.mark_down, peer.node_tls_for(node)))

    def _split_engine(self, settings: Any) -> Any:
        """The model over this box and rpc workers (RPC issue)."""
        from appliance.config import ConfigError
        from appliance.llm.rpc.split import SplitConfigError, SplitEngine

        try:
            return SplitEngine(settings, self.config, self.node)
        except SplitConfigError as exc:
            raise ConfigError(self.config.source, "llm.rpc_workers", str(exc)) from None

    def _compose_rpc_worker(self) -> None:
        """Lend this box's memory to a core's split model: llm.rpc_serve (RPC issue)."""
        if not self.config.llm.rpc_serve:
            return
        from appliance.llm.rpc.worker import RpcWorker

        self.add_component(RpcWorker(self.config, self.node, self.config.llm.rpc_thread_count))

    def _compose_tools(self) -> None:
        """Tools and the tool server (agent issue)."""
        from appliance.config import ConfigError
        from appliance.net import peer, peers
        from appliance.tools.factory import ToolConfigError, create_tools
        from appliance.tools.server import ToolServer
        from appliance.tools.timers import Timers
        from appliance.web import tools_api

        node, cfg = self.node, self.config

        def remote() -> peer.PeerClient:
            static = [peers.endpoint(url) for url in cfg.tools.endpoints]
            return peer.PeerClient.over(peers.Selection("tools", self._registry, static),
                                        peer.signer_for(node), peer.node_tls_for(node))

        timers = Timers()
        try:
            agent_tools, served = create_tools(cfg, world=node.get("world"), remote=remote,
                                               timers=timers)
        except ToolConfigError as exc:
            raise ConfigError(cfg.source, "tools", str(exc)) from None
        server_url = f"http://127.0.0.1:{cfg.tools.server_port}"

        def delegate() -> peer.PeerClient:
            # hybrid-agent-tools.service on this box, for when bwrap cannot run in this unit.
            return peer.PeerClient(lambda: server_url, peer.signer_for(node))

        self.add_component(ToolServer(cfg, agent_tools, served, timers, node.get("security"),
                                      delegate))
        self.add_routes(tools_api.setup)

    def _compose_agent(self) -> None:
        """The agent loop and /api/chat (agent issue)."""
        from appliance.agent.loop import Agent
        from appliance.web import chat_api

        node = self.node
        tools = node.get("tools")
        intents = None
        if self.config.intents.enabled:
            from appliance.intents.component import Intents
            from appliance.intents.language import available

            if self.config.intents.language not in available():
                from appliance.config import ConfigError

                raise ConfigError(self.config.source, "intents.language",
                                  f"found {self.config.intents.language!r}; sentences exist "
                                  f"for: {', '.join(available())}")
            intents = Intents(self.config.intents, tools.agent_tools,
                              self.config.agent.tool_timeout_s)
            self.add_component(intents)
        self.add_component(Agent(self.config.agent, tools.agent_tools,
                                 lambda: node.get("llm_router"), intents))
        self.add_routes(chat_api.setup)

    def _compose_voice(self) -> None:
        """STT, TTS, VAD, the voice pipeline and its APIs (voice issue)."""
        from appliance.web import openai_audio

        if not self.config.voice.enabled:
            self.add_routes(lambda app: openai_audio.setup(app, None))  # 503: voice is off
            if self.config.wyoming.enabled:
                from appliance.config import ConfigError

                raise ConfigError(self.config.source, "wyoming.enabled",
                                  "the Wyoming server needs voice.enabled: true")
            return
        from appliance.voice.component import VoiceComponent
        from appliance.voice.reply import ReplySource
        from appliance.voice.settings import VoiceSettings
        from appliance.web import voice_api

        node = self.node
        reply = ReplySource(agent=node.get("agent"), router=node.get("llm_router"),
                            system_prompt=self.config.agent.system_prompt)
        voice = VoiceComponent(VoiceSettings.from_config(self.config), reply,
                               timers=getattr(node.get("tools"), "timers", None))
        self._compose_wyoming(voice)  # before voice: it answers `describe` while models load
        self.add_component(voice)
        self.add_routes(lambda app: voice_api.setup(app, voice))
        self.add_routes(lambda app: openai_audio.setup(app, voice))

    def _compose_wyoming(self, voice: Any) -> None:
        """The Wyoming server over the voice models and the agent (Wyoming issue)."""
        cfg = self.config.wyoming
        if not cfg.enabled:
            return
        from appliance.config import ConfigError
        from appliance.wyoming.access import AccessPolicy, parse_clients
        from appliance.wyoming.asr import AsrService
        from appliance.wyoming.handle import HandleService
        from appliance.wyoming.server import Service, WyomingServer
        from appliance.wyoming.tts import TtsService

        try:
            clients = parse_clients(cfg.clients)
        except ValueError as exc:
            raise ConfigError(self.config.source, "wyoming.clients", str(exc)) from None
        asr = AsrService(voice)
        services: list[Service] = [asr, TtsService(voice), HandleService(
            voice.reply, asr.languages, self.config.agent.max_text_chars)]
        self.add_component(WyomingServer(
            services, AccessPolicy(clients), host=cfg.host, port=cfg.port,
            max_connections=cfg.max_connections, idle_timeout_s=cfg.idle_timeout_s))

    def _compose_discovery(self) -> None:
        """mDNS advertise/browse and the peer registry (LAN discovery issue)."""
        from appliance.discovery.component import Discovery
        from appliance.web import peers_api

        wyoming = self.config.wyoming
        services = {"_wyoming._tcp.local.": wyoming.port} \
            if wyoming.enabled and wyoming.advertise else {}
        discovery = Discovery(self.config.discovery, self.node, self.config.http.port, services)
        self.add_component(discovery)
        security = self.node.get("security")
        self.add_routes(lambda app: peers_api.setup(app, discovery, security))

    def _compose_ui(self) -> None:
        """The web UI's static files (web UI issue)."""
        from appliance.web import ui

        # Added last, so the page's feature list sees every other part's routes.
        self.add_routes(ui.setup)

    def add_component(self, component: Component) -> None:
        self.node.add(component)

    def add_routes(self, setup: Callable[[web.Application], None]) -> None:
        self._route_setups.append(setup)

    def add_middleware(self, mw: Middleware) -> None:
        self._middlewares.append(mw)

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
        app = create_app(node, self._middlewares)
        for setup in self._route_setups:
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
    # stack in the journal, not only "code=dumped, signal=SEGV".
    faulthandler.enable()
    return asyncio.run(Daemon(config).run())
