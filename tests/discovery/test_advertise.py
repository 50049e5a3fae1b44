"""The advertiser's TXT refresh on a real AsyncZeroconf (loopback), with an injected clock."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from appliance.discovery.advertise import LOAD_REFRESH_S, Advertiser
from appliance.discovery.interfaces import NicAddress

TICKS = 4
WAIT_S = 60.0
LOOPBACK = NicAddress(iface="lo", address="127.0.0.1", version=4, index=1)


class RecordingZeroconf(AsyncZeroconf):
    """The real AsyncZeroconf, which also notes each record update in ``events``."""

    def __init__(self, events: list[tuple[str, Any]]) -> None:
        super().__init__(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        self.events = events

    async def async_update_service(self, info: AsyncServiceInfo) -> Any:
        props = info.properties
        self.events.append(("update", props[b"load"].decode(), props[b"seq"].decode()))
        return await super().async_update_service(info)


async def _run_refresh(txt: Any) -> list[tuple[str, Any]]:
    """Advertise on loopback, let the refresh loop sleep TICKS times; the ordered events."""
    events: list[tuple[str, Any]] = []
    ticked = asyncio.Event()

    async def sleep(seconds: float) -> None:
        # The injected clock: each call stands for `seconds` passing; no real waiting.
        events.append(("sleep", seconds))
        if sum(1 for e in events if e[0] == "sleep") > TICKS:
            ticked.set()
            await asyncio.Event().wait()  # the loop stays here until stop() cancels it
        await asyncio.sleep(0)

    azc = RecordingZeroconf(events)
    adv = Advertiser(azc, instance="throttle-test", host_label="throttle-test", port=9,
                     txt=txt, nics=lambda: [LOOPBACK], sleep=sleep)
    try:
        await adv.start()
        await asyncio.wait_for(ticked.wait(), WAIT_S)
    finally:
        await adv.stop()
        await azc.async_close()
    return events


async def test_a_load_that_changes_all_the_time_is_published_at_most_once_per_refresh():
    calls = iter(range(10_000))

    def busy_txt() -> dict[str, str]:
        return {"id": "t" * 32, "load": f"{next(calls)}/4"}  # different on every read

    events = await _run_refresh(busy_txt)
    updates = [e for e in events if e[0] == "update"]
    sleeps = [e for e in events if e[0] == "sleep"]
    assert all(seconds == LOAD_REFRESH_S == 2.0 for _, seconds in sleeps)
    # Every update is preceded by a full refresh period since the previous one ...
    assert events[0][0] == "sleep"
    for before, after in itertools.pairwise(events):
        assert not (before[0] == after[0] == "update"), events
    # ... and a changed load is not held back longer than one period.
    assert len(updates) == TICKS, events
    assert len({load for _, load, _ in updates}) == TICKS


async def test_a_load_that_returns_to_an_earlier_value_is_still_a_new_record():
    # Browsers ignore a TXT identical to one they still cache (0 -> 1 -> 0 would stick at 1).
    calls = iter(range(10_000))
    events = await _run_refresh(lambda: {"id": "t" * 32, "load": f"{next(calls) % 2}/1"})
    updates = [e for e in events if e[0] == "update"]
    assert {load for _, load, _ in updates} == {"0/1", "1/1"}
    seqs = [int(seq) for _, _, seq in updates]
    assert seqs == sorted(set(seqs)) and len(seqs) == TICKS


async def test_an_unchanged_record_is_not_re_sent():
    events = await _run_refresh(lambda: {"id": "t" * 32, "load": "0/4"})
    assert [e[0] for e in events] == ["sleep"] * (TICKS + 1)
