"""world_get, world_set, world_delete, world_list: the agent's view of the shared world model."""

from __future__ import annotations

from typing import Any

from appliance.tools.base import Tool, ToolError
from appliance.world.model import MAX_KEY_CHARS, WorldError, WorldModel

MAX_LISTED = 200

_KEY_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]+$", "minLength": 1,
               "maxLength": MAX_KEY_CHARS}


class _WorldTool(Tool):
    def __init__(self, world: WorldModel) -> None:
        self.world = world


class WorldGet(_WorldTool):
    name = "world_get"
    description = "Read one key of the shared home state (the world model), e.g. 'kitchen.light'."
    parameters = {"type": "object", "properties": {"key": _KEY_SCHEMA},
                  "required": ["key"], "additionalProperties": False}

    async def call(self, args: dict[str, Any]) -> Any:
        try:
            entry = await self.world.get(args["key"])
        except WorldError as exc:
            raise ToolError(str(exc)) from None
        if entry is None:
            raise ToolError(f"no key {args['key']!r} in the world model")
        return entry.to_json()


class WorldSet(_WorldTool):
    name = "world_set"
    description = ("Set one key of the shared home state to a value, e.g. key "
                   "'kitchen.light' value 'on'.")
    parameters = {"type": "object",
                  "properties": {"key": _KEY_SCHEMA,
                                 "value": {"type": ["string", "number", "boolean", "null",
                                                    "object", "array"]}},
                  "required": ["key", "value"], "additionalProperties": False}

    async def call(self, args: dict[str, Any]) -> Any:
        try:
            entry = await self.world.set(args["key"], args["value"])
        except WorldError as exc:
            raise ToolError(str(exc)) from None
        return entry.to_json()


class WorldDelete(_WorldTool):
    name = "world_delete"
    description = "Delete one key of the shared home state (the world model)."
    parameters = {"type": "object", "properties": {"key": _KEY_SCHEMA},
                  "required": ["key"], "additionalProperties": False}

    async def call(self, args: dict[str, Any]) -> Any:
        try:
            version = await self.world.delete(args["key"])
        except WorldError as exc:
            raise ToolError(str(exc)) from None
        return {"key": args["key"], "deleted": True, "version": version}


class WorldList(_WorldTool):
    name = "world_list"
    description = "List the keys of the shared home state with their values."
    parameters = {"type": "object",
                  "properties": {"prefix": {"type": "string", "maxLength": MAX_KEY_CHARS}},
                  "additionalProperties": False}

    async def call(self, args: dict[str, Any]) -> Any:
        prefix = args.get("prefix", "")
        try:
            entries = [e for e in await self.world.items() if e.key.startswith(prefix)]
        except WorldError as exc:
            raise ToolError(str(exc)) from None
        return {"entries": {e.key: e.value for e in entries[:MAX_LISTED]},
                "truncated": len(entries) > MAX_LISTED}
