"""The python tool: run a Python snippet inside the bubblewrap sandbox (heavy: tool server only)."""

from __future__ import annotations

from typing import Any

from appliance.tools.base import Tool
from appliance.tools.sandbox import Sandbox
from appliance.tools.shell import report

# Bounded for the grammar too: llama.cpp refuses repetitions over 2000 (x{0,n}).
MAX_CODE_CHARS = 1000
#: The system interpreter: the sandbox sees /usr only, never the daemon's venv.
PYTHON = "/usr/bin/python3"


class PythonRunner(Tool):
    name = "python"
    description = ("Run Python 3 code in an isolated sandbox (no network, no files outside "
                   "/tmp); print() what you want back.")
    parameters = {"type": "object",
                  "properties": {"code": {"type": "string", "minLength": 1,
                                          "maxLength": MAX_CODE_CHARS}},
                  "required": ["code"], "additionalProperties": False}
    light = False

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def call(self, args: dict[str, Any]) -> Any:
        # The code comes on stdin so no argv length limit or quoting applies.
        result = await self.sandbox.run([PYTHON, "-I", "-"], stdin=args["code"].encode())
        return report(result)
