"""The world model in a real daemon over HTTP: durability under kill -9, compare-and-set, SSE."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from typing import Any

import aiohttp

from appliance.web.world_api import HEARTBEAT_S, KEEPALIVE_EVERY

WRITERS = 16
ACKED_BEFORE_KILL = 1000
WRITE_TIMEOUT_S = 10.0


async def test_every_acknowledged_write_survives_kill_9(daemon_factory: Callable[..., Any]) -> None:
    d = await daemon_factory(world={"mode": "local", "compact_after": 400})
    acked: dict[str, tuple[Any, int]] = {}
    killed = asyncio.Event()

    async def writer(session: aiohttp.ClientSession, w: int) -> None:
        n = 0
        while not killed.is_set():
            key, value = f"w{w}-{n}", {"writer": w, "n": n, "pad": "x" * (n % 50)}
            try:
                async with session.put(f"{d.url}/api/world/{key}", json=value,
                                       timeout=aiohttp.ClientTimeout(total=WRITE_TIMEOUT_S)) as r:
                    if r.status != 200:
                        return
                    body = await r.json()
            except (aiohttp.ClientError, TimeoutError):
                return  # the daemon died under us: this write was never acknowledged
            acked[key] = (value, body["version"])
            n += 1
            if len(acked) >= ACKED_BEFORE_KILL and not killed.is_set():
                # Kill while the other writers' requests are in flight.
                killed.set()
                d.proc.send_signal(signal.SIGKILL)

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(writer(session, w) for w in range(WRITERS)))
    await d.stop()  # reaps the killed process
    assert len(acked) >= ACKED_BEFORE_KILL

    again = await daemon_factory(world={"mode": "local", "compact_after": 400},
                                 node={"state_dir": d.config["node"]["state_dir"]})
    status, state = await again.get_json("/api/world")
    assert status == 200
    stored = {e["key"]: (e["value"], e["version"]) for e in state["entries"]}
    missing = [k for k in acked if k not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    assert all(stored[k] == acked[k] for k in acked)
    # Nothing corrupt: every stored value is one a writer sent, versions are unique.
    for key, (value, _) in stored.items():
        w, n = key[1:].split("-")
        assert value == {"writer": int(w), "n": int(n), "pad": "x" * (int(n) % 50)}
    assert len({v for _, v in stored.values()}) == len(stored)
    # And it keeps working after the crash.
    async with aiohttp.ClientSession() as s, s.put(f"{again.url}/api/world/after", json=1) as r:
        assert r.status == 200
        assert (await r.json())["version"] > max(v for _, v in stored.values())


async def test_compare_and_set_over_http(daemon_factory: Callable[..., Any]) -> None:
    d = await daemon_factory(world={"mode": "local"})
    url = f"{d.url}/api/world/thermostat"
    async with aiohttp.ClientSession() as s:
        async with s.put(url, json=20, headers={"If-Match": "0"}) as r:
            assert r.status == 200
            v1 = (await r.json())["version"]
            assert r.headers["ETag"] == str(v1)
        async with s.put(url, json=21, headers={"If-Match": str(v1)}) as r:
            assert r.status == 200
            v2 = (await r.json())["version"]
        async with s.put(url, json=99, headers={"If-Match": str(v1)}) as r:
            assert r.status == 412
            err = (await r.json())["error"]
            assert err["code"] == "version_conflict" and str(v2) in err["message"]
        async with s.delete(url, headers={"If-Match": str(v1)}) as r:
            assert r.status == 412
        async with s.get(url) as r:
            assert (await r.json()) == {"key": "thermostat", "value": 21, "version": v2}
        async with s.put(url, json=1, headers={"If-Match": "abc"}) as r:
            assert r.status == 400 and "If-Match" in (await r.json())["error"]["message"]
        async with s.put(f"{d.url}/api/world/bad%20key", json=1) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_key"
        async with s.put(url, data=b"{not json", headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
        async with s.get(f"{d.url}/api/world/nothing-here") as r:
            assert r.status == 404
        for key in ("hall.a", "hall.b", "porch"):
            async with s.put(f"{d.url}/api/world/{key}", json=1) as r:
                assert r.status == 200
        async with s.get(f"{d.url}/api/world", params={"prefix": "hall.", "limit": "1"}) as r:
            body = await r.json()
            assert [e["key"] for e in body["entries"]] == ["hall.a"] and body["truncated"]
        async with s.get(f"{d.url}/api/world", params={"limit": "0"}) as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "limit"


#: The first keep-alive comes after KEEPALIVE_EVERY idle heartbeats; then some slack.
FEED_WAIT_S = KEEPALIVE_EVERY * HEARTBEAT_S + 30.0


async def test_change_feed_over_sse(daemon_factory: Callable[..., Any]) -> None:
    d = await daemon_factory(world={"mode": "local"})
    async with aiohttp.ClientSession() as s, s.get(f"{d.url}/api/world/events") as feed:
        assert feed.status == 200
        assert (await feed.content.readline()).startswith(b": subscribed")
        await feed.content.readline()
        async with s.put(f"{d.url}/api/world/lamp", json="on") as r:
            assert r.status == 200
        changes = []

        async def read_until(done: Callable[[bytes], bool]) -> None:
            while True:
                line = await asyncio.wait_for(feed.content.readline(), FEED_WAIT_S)
                if line.startswith(b"data:"):
                    changes.append(json.loads(line[5:]))
                if done(line):
                    return

        # An idle feed stays open: it outlives KEEPALIVE_EVERY heartbeats (the keep-alive
        # comment says so) and still carries the next change.
        await read_until(lambda line: line.startswith(b": keep-alive"))
        async with s.delete(f"{d.url}/api/world/lamp") as r:
            assert r.status == 200
        await read_until(lambda line: len(changes) == 2)
    assert [(c["op"], c["key"], c["value"]) for c in changes] == [
        ("set", "lamp", "on"), ("delete", "lamp", None)]
