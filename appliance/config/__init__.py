"""YAML -> validated frozen dataclasses; the only place that reads the config file.

Every section is a frozen dataclass; every field has a default and a one-line
doc in its metadata (``doc``), plus optional ``choices``, ``min`` and ``max``.
Loading merges three layers: the dataclass defaults, the tier's defaults
(:mod:`appliance.tiers`) and the user's YAML. Anything unknown or ill-typed
raises :class:`ConfigError` naming the file, the key path, what was found and
what is allowed.

The parts: ``keys`` (how a key is declared, :class:`ConfigError`), the sections
(``node``, ``llm``, ``voice``, ``agent``) and their root ``schema.Config``,
``yamlfile`` (reading and writing the YAML) and ``load`` (merging and checking).
Import from here: ``from appliance.config import Config, ConfigError, load``.
"""

from appliance.config.agent import (
    PLACEMENTS,
    AgentConfig,
    ExpertConfig,
    IntentsConfig,
    SandboxConfig,
    ToolsConfig,
    WorldConfig,
)
from appliance.config.keys import ConfigError
from appliance.config.llm import LlmConfig
from appliance.config.load import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    DEFAULT_STATE_DIR,
    MAX_URL_CHARS,
    build,
    load,
    tier_defaults_yaml,
)
from appliance.config.node import (
    DEFAULT_PORT,
    TIERS,
    DiscoveryConfig,
    HttpConfig,
    LoggingConfig,
    NodeConfig,
    SecurityConfig,
)
from appliance.config.schema import DEFAULT_MODEL_PATHS, Config
from appliance.config.voice import WAKE_ENGINES, WAKE_WORDS, VoiceConfig, WyomingConfig
from appliance.config.yamlfile import (
    MAX_CONFIG_BYTES,
    YAML11_FALSE,
    YAML11_TRUE,
    Yaml11Word,
    dump_yaml,
    field_docs,
    read_yaml,
    to_dict,
)

__all__ = [
    "CONFIG_ENV", "DEFAULT_CONFIG_PATH", "DEFAULT_MODEL_PATHS", "DEFAULT_PORT",
    "DEFAULT_STATE_DIR", "MAX_CONFIG_BYTES", "MAX_URL_CHARS", "PLACEMENTS", "TIERS",
    "WAKE_ENGINES", "WAKE_WORDS", "YAML11_FALSE", "YAML11_TRUE",
    "AgentConfig", "Config", "ConfigError", "DiscoveryConfig", "ExpertConfig", "HttpConfig",
    "IntentsConfig", "LlmConfig", "LoggingConfig", "NodeConfig", "SandboxConfig",
    "SecurityConfig", "ToolsConfig", "VoiceConfig", "WorldConfig", "WyomingConfig",
    "Yaml11Word",
    "build", "dump_yaml", "field_docs", "load", "read_yaml", "tier_defaults_yaml", "to_dict",
]
