"""RemoteToolProxy: a tool that runs on a trusted core's tool server, behind the Tool interface."""

from __future__ import annotations

from typing import Any

from appliance.net.peer import PeerClient, PeerError, error_message
from appliance.net.text import message
from appliance.tools.base import Tool, ToolError

#: Extra seconds given to the HTTP request beyond the tool's own timeout.
HTTP_MARGIN_S = 5.0
DEFAULT_CALL_TIMEOUT_S = 60.0


class RemoteToolProxy(Tool):
    """Calls ``POST /api/tools/{name}`` on the peer ``client`` resolves, signed.

    The schema is the local class's, so the arguments are validated here
    before a byte leaves the box (the server validates them again).
    """

    def __init__(self, template: type[Tool] | Tool, client: PeerClient,
                 timeout_s: float = DEFAULT_CALL_TIMEOUT_S) -> None:
        self.name = template.name  # type: ignore[misc]
        self.description = template.description  # type: ignore[misc]
        self.parameters = template.parameters  # type: ignore[misc]
        self.light = template.light  # type: ignore[misc]
        self.client = client
        self.timeout_s = timeout_s

    async def call(self, args: dict[str, Any]) -> Any:
        try:
            status, body, _ = await self.client.request(
                "POST", f"/api/tools/{self.name}", {"arguments": args},
                timeout_s=self.timeout_s + HTTP_MARGIN_S)
        except PeerError as exc:
            raise ToolError(f"the tool server cannot be reached: {exc}") from None
        if status != 200 or not isinstance(body, dict):
            raise ToolError(f"the tool server refused {self.name}: "
                            f"{error_message(body, status)} (HTTP {status})")
        if not body.get("ok"):
            raise ToolError(message(body.get("error", "unknown error")))
        return body.get("result")

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        try:
            info["where"] = self.client.base_url()
        except PeerError:
            info["where"] = "remote (no peer known)"
        return info
