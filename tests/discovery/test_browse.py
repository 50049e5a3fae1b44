"""The browser's bookkeeping of resolutions: an update that arrives mid-resolution is not lost."""

from __future__ import annotations

import asyncio
from typing import Any

from zeroconf import ServiceStateChange

from appliance.discovery import browse
from appliance.discovery.browse import Announcement, Browser
from appliance.discovery.txt import SERVICE_TYPE, parse_txt

NAME = f"core-a.{SERVICE_TYPE}"
WAIT_S = 10.0


async def test_an_update_during_a_resolution_is_resolved_again_and_the_last_txt_wins(
        monkeypatch: Any) -> None:
    # A hand-written stand-in for the resolver: the order of a cache read and a newer
    # record arriving cannot be forced with a real zeroconf cache.
    records = iter(["1/1", "0/1"])
    started, release = asyncio.Event(), asyncio.Event()

    async def resolve_stand_in(azc: Any, service_type: str, name: str,
                               timeout_ms: int = 0) -> Announcement:
        load = next(records)  # what the cache held when this resolution read it
        if not started.is_set():
            started.set()
            await release.wait()
        return Announcement(service_name=name, instance="core-a", addresses=("10.0.0.1",),
                            port=8470, txt=parse_txt({"id": "c" * 32, "load": load}))

    monkeypatch.setattr(browse, "resolve", resolve_stand_in)
    found: list[Announcement] = []
    both = asyncio.Event()

    def on_found(ann: Announcement) -> None:
        found.append(ann)
        if len(found) == 2:
            both.set()

    browser = Browser(None, on_found, lambda _name: None)  # type: ignore[arg-type]
    browser._on_change(None, SERVICE_TYPE, NAME, ServiceStateChange.Added)  # type: ignore[arg-type]
    await asyncio.wait_for(started.wait(), WAIT_S)
    # The load changes while the first resolution is still running.
    browser._on_change(None, SERVICE_TYPE, NAME, ServiceStateChange.Updated)  # type: ignore[arg-type]
    release.set()
    await asyncio.wait_for(both.wait(), WAIT_S)
    assert [a.txt.load for a in found] == [1.0, 0.0]
    await browser.stop()
