"""Stopping background tasks: cancel them and wait until every one has ended."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel ``tasks`` (``None`` entries skipped) and return once all have ended.

    A task that had already failed is logged, not raised: stopping goes on. A
    cancellation of the caller itself still propagates, unlike awaiting the
    cancelled task inside ``suppress(CancelledError)``, which swallows it.
    """
    live = [task for task in tasks if task is not None]
    for task in live:
        task.cancel()
    if not live:
        return
    await asyncio.wait(live)
    for task in live:
        if not task.cancelled() and task.exception() is not None:
            log.warning("task %s had failed: %r", task.get_name(), task.exception())
