"""The llm section: the language model, in-process, split over rpc workers, or remote."""

from __future__ import annotations

from dataclasses import dataclass

from appliance import hardware
from appliance.config.keys import _f


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
