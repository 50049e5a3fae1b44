"""Text a peer sent, made safe to log, show or pass on: printable characters only, capped.

Every string that comes from another box (a TXT record, a health answer, an
error message in an HTTP body or an SSE event, a name in a link's preamble)
goes through :func:`clean` before it reaches a log line, a terminal, an API
answer or an exception's message.
"""

from __future__ import annotations

from typing import Any

#: The cap on an error message from a peer.
MAX_MESSAGE_CHARS = 500


def clean(value: Any, limit: int) -> str:
    """Printable text only, capped at ``limit`` characters."""
    text = "".join(ch for ch in str(value) if ch.isprintable())
    return text.strip()[:limit]


def message(value: Any) -> str:
    """A peer's error message as it may be shown (:func:`clean` at MAX_MESSAGE_CHARS)."""
    return clean(value, MAX_MESSAGE_CHARS)
