"""The Tool interface: a name, a description, JSON-schema parameters and ``async call(args)``.

In-process tools and :class:`~appliance.tools.remote.RemoteToolProxy` both
implement it; callers go through :func:`invoke`, which validates the
arguments against the schema first and turns every failure into an error
observation the model can read, never an exception.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import jsonschema

from appliance.errors import ApplianceError

#: Longest error text handed back to the model.
MAX_ERROR_CHARS = 2000


class ToolError(ApplianceError):
    """A tool could not do what was asked; the message is shown to the model."""


class Tool:
    """Base class; subclasses set the class attributes and implement :meth:`call`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
    #: Light tools may run in-process on every tier; heavy ones only on a tool server.
    light: ClassVar[bool] = True

    async def call(self, args: dict[str, Any]) -> Any:
        """Do the work; return JSON-able data or raise ToolError."""
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "parameters": self.parameters, "light": self.light, "where": "local"}


def validate(tool: Tool, args: Any) -> str | None:
    """None when ``args`` match the tool's schema, else what is wrong, in words."""
    if not isinstance(args, dict):
        return f"arguments must be a JSON object, found {type(args).__name__}"
    error = jsonschema.exceptions.best_match(_validator(tool.parameters).iter_errors(args))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "arguments"
    return f"{where}: {error.message}"


async def invoke(tool: Tool, args: Any, timeout_s: float) -> dict[str, Any]:
    """Validate and call; ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``."""
    problem = validate(tool, args)
    if problem is not None:
        return error(f"invalid arguments for {tool.name}: {problem}")
    try:
        result = await asyncio.wait_for(tool.call(args), timeout_s)
    except ToolError as exc:
        return error(str(exc))
    except TimeoutError:
        return error(f"{tool.name} did not finish within {timeout_s:g} s")
    except Exception as exc:  # a bug in a tool must not end the turn
        return error(f"{tool.name} failed: {exc.__class__.__name__}: {exc}")
    return {"ok": True, "result": result}


def _validator(schema: dict[str, Any]) -> Any:
    # Checking the schema and building a validator costs milliseconds; do it once per schema.
    key = id(schema)
    cached = _VALIDATORS.get(key)
    if cached is None or cached[0] is not schema:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        cached = (schema, cls(schema))
        _VALIDATORS[key] = cached
    return cached[1]


_VALIDATORS: dict[int, tuple[dict[str, Any], Any]] = {}


def error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message[:MAX_ERROR_CHARS]}


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments as the model sent them (a JSON string) -> the decoded value."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw) if raw.strip() else {}
    except ValueError:
        return raw
