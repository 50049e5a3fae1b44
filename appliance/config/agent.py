"""What the agent may use: the tools and their sandbox, experts, intents, the world model."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.config.keys import _f

#: The places a tool may run (tools.placement).
PLACEMENTS = ("auto", "local", "remote")


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

    enabled: bool = _f(True, "Answer timers, time, arithmetic, memory, stop and small talk "
                             "without the LLM.")
    language: str = _f("en", "Language of the sentence templates (appliance/intents/sentences).")
    small_talk: bool = _f(True, "Answer hello, thanks, goodbye, 'how are you', 'who are you' "
                                "and 'what can you do' without the LLM (false: the LLM "
                                "answers them).")
    measures: str = _f("auto", "What a pint, quart, gallon or fluid ounce said bare is: us, "
                               "imperial, or auto (imperial where the timezone, "
                               "tools.timezone or the system's, is the UK's or Ireland's; "
                               "US elsewhere). 'US pint' and 'imperial pint' always work.",
                       choices=("auto", "us", "imperial"))


@dataclass(frozen=True)
class WorldConfig:
    """The shared world model: keys -> JSON values."""

    mode: str = _f("local", "local, remote or off.", choices=("local", "remote", "off"))
    serve: bool = _f(False, "Serve this node's world model to trusted peers.")
    compact_after: int = _f(10000, "Journal records before a snapshot.", min=10, max=100_000_000)
    max_value_bytes: int = _f(64 * 1024, "Largest JSON value.", min=16, max=16 * 1024 * 1024)
    endpoint: str = _f("", "Static URL of the core's world model for mode remote when "
                           "discovery knows none.")
