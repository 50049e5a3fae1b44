"""Reading a Server-Sent Events response of the chat API in tests."""

from __future__ import annotations

import json
from typing import Any

import aiohttp


async def read_events(resp: aiohttp.ClientResponse) -> list[tuple[str, Any]]:
    """Every ``event:``/``data:`` pair of ``resp`` until it ends: (event name, parsed JSON)."""
    events: list[tuple[str, Any]] = []
    kind = ""
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            events.append((kind, json.loads(line[6:])))
    return events
