"""The config file's YAML: read (YAML 1.2 booleans, a bounded size), written back with a doc
line per key, and listed key by key for the docs."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

import yaml

from appliance.config.keys import ConfigError, _kind
from appliance.config.schema import Config

MAX_CONFIG_BYTES = 1024 * 1024

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
    off`` is the word "off"; a boolean key still takes a bare yes/no/on/off
    (:mod:`appliance.config.load`)."""


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
