"""Loading: the file, merged over the tier's defaults and the dataclass defaults, each
value checked against its key's declaration; :func:`load` is how the daemon gets its config."""

from __future__ import annotations

import dataclasses
import os
import socket
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from appliance import hardware, remote_model, tiers
from appliance.config.keys import ConfigError, _kind
from appliance.config.llm import LlmConfig
from appliance.config.node import DEFAULT_PORT, TIERS
from appliance.config.schema import Config
from appliance.config.voice import VoiceConfig
from appliance.config.yamlfile import YAML11_FALSE, YAML11_TRUE, Yaml11Word, dump_yaml, read_yaml

DEFAULT_CONFIG_PATH = Path("/etc/hybrid-agent/config.yaml")
CONFIG_ENV = "HYBRID_AGENT_CONFIG"
DEFAULT_STATE_DIR = Path("/var/lib/hybrid-agent")
MAX_URL_CHARS = 2048


def build(
    user: Mapping[str, Any] | None = None,
    *,
    source: str = "<defaults>",
    detected_tier: str = "edge",
    env: Mapping[str, str] | None = None,
    hostname: str | None = None,
) -> Config:
    """Merge defaults, the tier's defaults and ``user`` into a validated Config."""
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
