"""AgentEvent: one step of a turn, as the API, the voice pipeline and the web UI see it.

Types and their ``data``:

- ``thought``: ``{"text"}`` what the model said before calling tools; its words
  were already streamed as ``token`` events (a step is known to be a tool step
  only at its end), so ``final.text`` is the last step's answer alone
- ``tool_call``: ``{"id", "name", "arguments", "where"}``
- ``tool_result``: ``{"id", "name", "ok", "result" | "error"}``
- ``token``: ``{"text"}`` a piece of the answer, as soon as it is generated
- ``final``: ``{"text", "conversation_id", "steps", "finish_reason", "served_by", "agent"}``;
  a turn answered by an intent (appliance/intents) has ``served_by: "intent"``,
  ``intent``, the intent's name, and ``ends_conversation`` (goodbye, thanks: by voice
  no follow-up window opens after them)
- ``error``: ``{"message", "code"}``; the turn ends
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

EVENT_TYPES = ("thought", "tool_call", "tool_result", "token", "final", "error")


@dataclass(frozen=True)
class AgentEvent:
    """``type`` is one of EVENT_TYPES; ``data`` is JSON-able."""

    type: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "data": self.data}

    def sse(self) -> bytes:
        """This event as one Server-Sent Events message."""
        body = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)
        return f"event: {self.type}\ndata: {body}\n\n".encode()


def token(text: str) -> AgentEvent:
    return AgentEvent("token", {"text": text})


def failure(message: str, code: str = "agent_error") -> AgentEvent:
    return AgentEvent("error", {"message": message, "code": code})
