"""The parts the config asks for, wired together: each part's component, routes and middleware.

The daemon (:mod:`appliance.daemon`) runs what this builds. Each part wires itself
in its own ``_compose_<part>()`` method, in start order; only these read the tier's
choices (the config), and each hands a part its collaborators.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from appliance.config import Config
from appliance.node import Component, Node
from appliance.web.app import Middleware

log = logging.getLogger(__name__)


class Composition:
    """Builds the parts for ``node``: components go into the node as they are made, the
    middleware and route setups are kept for the HTTP app."""

    def __init__(self, config: Config, node: Node) -> None:
        self.config = config
        self.node = node
        self.middlewares: list[Middleware] = []
        self.route_setups: list[Callable[[web.Application], None]] = []
        self._compose()

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
        from appliance.llm.rpc.roster import SplitConfigError
        from appliance.llm.rpc.split import SplitEngine

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

        # Kept in the state dir so an alarm survives a restart; only where the agent uses
        # the timers (not in `hybrid-agent tools-server`, which would race for the file).
        kept = cfg.node.state_path / "timers.json" if "timers" in cfg.tools.enabled else None
        timers = Timers(kept, cfg.tools.timezone)
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
            from appliance.intents.turn import About
            from appliance.intents.units import measures

            def llm_available() -> bool:
                router = node.get("llm_router")
                return router is not None and router.available()

            intents = Intents(self.config.intents, tools.agent_tools,
                              self.config.agent.tool_timeout_s,
                              About(node=node.name, llm=llm_available,
                                    measures=measures(self.config.intents.measures,
                                                      self.config.tools.timezone)))
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
        from appliance.wyoming.wake import WakeService

        try:
            clients = parse_clients(cfg.clients)
        except ValueError as exc:
            raise ConfigError(self.config.source, "wyoming.clients", str(exc)) from None
        asr = AsrService(voice)
        services: list[Service] = [asr, TtsService(voice), HandleService(
            voice.reply, asr.languages, self.config.agent.max_text_chars), WakeService(voice)]
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
        self.route_setups.append(setup)

    def add_middleware(self, mw: Middleware) -> None:
        self.middlewares.append(mw)
