"""The shell tool: one /bin/sh command inside the bubblewrap sandbox (heavy: tool server only)."""

from __future__ import annotations

from typing import Any

from appliance.tools.base import Tool, ToolError
from appliance.tools.sandbox import Sandbox

# Bounded for the grammar too: llama.cpp refuses repetitions over 2000 (x{0,n}).
MAX_COMMAND_CHARS = 1000


class Shell(Tool):
    name = "shell"
    description = ("Run a shell command in an isolated sandbox (no network, read-only system, "
                   "a private /tmp). Returns stdout, stderr and the exit status.")
    parameters = {"type": "object",
                  "properties": {"command": {"type": "string", "minLength": 1,
                                             "maxLength": MAX_COMMAND_CHARS}},
                  "required": ["command"], "additionalProperties": False}
    light = False

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def call(self, args: dict[str, Any]) -> Any:
        result = await self.sandbox.run(["/bin/sh", "-c", args["command"]])
        return report(result)


def report(result: Any) -> dict[str, Any]:
    """The run as a tool result, or ToolError (with the output) when it failed."""
    body = {"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr}
    if not result.ok:
        tail = (result.stderr or result.stdout)[-1500:]
        raise ToolError(f"{result.problem()}" + (f"; output: {tail}" if tail else ""))
    return body
