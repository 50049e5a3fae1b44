"""What the engine needs from the config, resolved once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.config import Config


@dataclass(frozen=True)
class EngineSettings:
    """What the engine needs from the config."""

    model_path: Path
    model_id: str
    context: int = 4096
    threads: int = 2
    slots: int = 4
    queue: int = 16
    max_tokens: int = 512
    max_prompt_bytes: int = 256 * 1024
    weight_repack: str = "auto"
    """auto, on or off (see appliance/llm/cpu.py)."""
    wait_policy: str = "adaptive"
    """OpenMP's wait policy: adaptive (libgomp's default), active (spin), passive (sleep)."""
    state_dir: Path | None = None
    """Where the warm-up record lives; None keeps none (tests)."""
    embeddings: bool = True
    """Serve /v1/embeddings from this model (a second, small context)."""
    rpc_endpoints: tuple[str, ...] = ()
    """ggml RPC servers (host:port) that take the last layers; empty: this box alone."""
    rpc_shares: tuple[float, ...] = ()
    """Shares of the layers: this box, then each endpoint (appliance.llm.rpc.placement)."""
    rpc_workers: tuple[str, ...] = ()
    """The node name behind each endpoint, for the placement report."""

    def require_model(self) -> None:
        """LLMError saying how to get the model when its file is missing."""
        from appliance.llm.chat import LLMError

        if not self.model_path.is_file():
            raise LLMError(f"LLM model {self.model_path} does not exist "
                           "(run `hybrid-agent models fetch --role llm` or set llm.model)")

    @classmethod
    def from_config(cls, cfg: Config) -> EngineSettings:
        path = cfg.llm_model_path
        llm = cfg.llm
        return cls(model_path=path, model_id=path.stem, context=llm.context,
                   threads=llm.thread_count, slots=llm.slots, queue=llm.queue,
                   max_tokens=llm.max_tokens, max_prompt_bytes=llm.max_prompt_bytes,
                   weight_repack=llm.weight_repack, wait_policy=llm.wait_policy,
                   state_dir=cfg.node.state_path, embeddings=llm.embeddings)
