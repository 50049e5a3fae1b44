"""Tool calls a model wrote as answer text instead of as a call, read back as calls.

Small models sometimes answer ``{"name": "calculator", "arguments": {...}}``
(or the same in a code fence or ``<tool_call>`` tags) as plain text. The loop
holds back an answer that starts like that and, when it parses as a call of a
known tool, runs it; such text is never shown as the answer.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

#: Characters an answer that may be a tool call starts with.
CALL_STARTS = ("{", "[", "`", "<")
#: Longest text read as a tool call.
MAX_CALL_CHARS = 8000
_WRAPPERS = re.compile(r"^\s*(?:```(?:json|tool_call)?\s*|<tool_call>\s*|<function[^>]*>\s*)"
                       r"|(?:\s*```|\s*</tool_call>|\s*</function>)\s*$")


def may_be_call(text: str) -> bool:
    """Whether ``text`` (an answer so far) starts the way a written tool call does."""
    head = text.lstrip()
    return head[:1] in CALL_STARTS


def parse(text: str, tools: list[str]) -> list[dict[str, Any]] | None:
    """The OpenAI ``tool_calls`` written in ``text``, or None when it is not a call of one of
    ``tools``."""
    if len(text) > MAX_CALL_CHARS:
        return None
    body = _WRAPPERS.sub("", text.strip()).strip()
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        value = value["tool_calls"]
    items = value if isinstance(value, list) else [value]
    calls: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            return None
        fn: dict[str, Any] = item["function"] if isinstance(item.get("function"), dict) \
            else item
        name = fn.get("name") or fn.get("tool") or fn.get("tool_name")
        if not isinstance(name, str) or name not in tools:
            return None
        args: Any = next((fn[k] for k in ("arguments", "parameters", "args", "input") if k in fn),
                    {})
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except ValueError:
                return None
        calls.append({"id": f"text-{uuid.uuid4().hex[:8]}", "type": "function",
                      "function": {"name": name, "arguments": json.dumps(args)}})
    return calls or None


def looks_like_json(text: str) -> bool:
    """Whether ``text`` is a JSON object or array (and so no answer to speak)."""
    body = _WRAPPERS.sub("", text.strip()).strip()
    if body[:1] not in ("{", "["):
        return False
    try:
        json.loads(body)
    except ValueError:
        return False
    return True
