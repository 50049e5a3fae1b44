"""How a config key is declared (a default, a doc line, bounds) and the error that names one.

The sections declare each key with :func:`_f`, short because a section is a column of them.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import field
from typing import Any

from appliance.errors import ApplianceError


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
