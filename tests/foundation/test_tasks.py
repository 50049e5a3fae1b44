"""cancel_and_wait: every task ends, failures are logged, the caller's cancellation survives."""

from __future__ import annotations

import asyncio
import logging

import pytest

from appliance.tasks import cancel_and_wait


async def test_cancels_every_task_and_skips_none() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    tasks = [asyncio.create_task(forever()) for _ in range(3)]
    await started.wait()
    await cancel_and_wait([tasks[0], None, *tasks[1:]])
    assert all(t.cancelled() for t in tasks)
    await cancel_and_wait([])


async def test_a_task_that_had_failed_is_logged_not_raised(caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    async def boom() -> None:
        raise ValueError("broken probe")

    task = asyncio.create_task(boom(), name="probe-x")
    await asyncio.wait([task])
    with caplog.at_level(logging.WARNING, logger="appliance.tasks"):
        await cancel_and_wait([task])
    assert "probe-x" in caplog.text and "broken probe" in caplog.text


async def test_the_callers_own_cancellation_propagates() -> None:
    running, cancelled, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        # Finishes its cleanup after the first cancellation, as a flushing writer does.
        running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            await release.wait()

    inner = asyncio.create_task(stubborn())
    await running.wait()
    stopper = asyncio.create_task(cancel_and_wait([inner]))
    await cancelled.wait()  # the stopper is now waiting for the inner task to end
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert not inner.done()
    release.set()
    await inner
