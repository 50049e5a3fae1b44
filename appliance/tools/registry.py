"""The set of tools one node offers: by name, with their OpenAI specs."""

from __future__ import annotations

from typing import Any

from appliance.tools.base import Tool, error, invoke


class ToolRegistry:
    """Tools by name; ``invoke`` never raises."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools or []:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} added twice")
        self._tools[tool.name] = tool

    def replace(self, tool: Tool) -> None:
        """Put ``tool`` in the place of the one with the same name."""
        self._tools[tool.name] = tool

    def remove(self, name: str) -> None:
        self._tools.pop(name, None)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self, allowed: list[str] | None = None) -> list[dict[str, Any]]:
        """OpenAI ``tools`` entries, limited to ``allowed`` when given."""
        return [self._tools[n].spec() for n in self.names()
                if allowed is None or n in allowed]

    def describe(self) -> list[dict[str, Any]]:
        return [self._tools[n].describe() for n in self.names()]

    async def invoke(self, name: str, args: Any, timeout_s: float) -> dict[str, Any]:
        tool = self._tools.get(name)
        if tool is None:
            return error(f"unknown tool {name!r}; available: {', '.join(self.names()) or 'none'}")
        return await invoke(tool, args, timeout_s)
