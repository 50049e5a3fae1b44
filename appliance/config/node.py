"""The box's own sections: who it is, its HTTP listener, its logs, finding peers, trust."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.config.keys import _f

DEFAULT_PORT = 8700
TIERS = ("edge", "mid", "core")


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
class SecurityConfig:
    """The cluster key and request signing."""

    cluster_key_file: str = _f("/etc/hybrid-agent/cluster.key", "The 32-byte cluster key.",
                               path=True)
    replay_window_s: float = _f(60.0, "Signed requests older than this are refused.",
                                min=1.0, max=3600.0)
