"""Await a condition observed over HTTP, with a deadline (the tests' only polling)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

WAIT_S = 15.0
POLL_S = 0.05


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = WAIT_S,
                   what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; its value. Fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await check()
        except (aiohttp.ClientError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
