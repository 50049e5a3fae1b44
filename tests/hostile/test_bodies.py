"""Issue 15, items 1, 4 and 5: bounded bodies, header-first signatures, bounded depth,
small input checks. Each test names the red team's finding it answers."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance import jsonbounds
from tests.hostile.conftest import raw_request, rss_bytes
from tests.lan.peer import TestPeer

MIB = 1024 * 1024
JSON = {"Content-Type": "application/json"}
#: What a few hostile bodies may add to the daemon's memory (they used to add 450 MB).
RSS_BUDGET = 48 * MIB


def flood(size: int) -> bytes:
    """``[{},{},...]`` of ``size`` bytes: the cheapest way to make a parser build objects."""
    n = (size - 2) // 3
    return b"[" + b"{}," * n + b"{}]"


async def chunks(data: bytes, piece: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i:i + piece]


async def test_json_control_routes_refuse_a_16_mib_body_announced_or_chunked(
        daemon_factory: Callable[..., Any]) -> None:
    """Red team: 16 MiB of [{},...] to /api/chat took RSS from 50 to 504 MB; a chunked 16 MiB
    challenge was parsed (430 MB) and answered 400 instead of 413."""
    d = await daemon_factory(world={"mode": "local"})
    body = flood(16 * MIB)
    before = rss_bytes(d)
    async with aiohttp.ClientSession() as s:
        for path in ("/api/chat", "/api/peers/challenge"):
            for framing in ("content-length", "chunked"):
                data: Any = body if framing == "content-length" else chunks(body)
                try:
                    async with s.post(d.url + path, data=data, headers=JSON) as r:
                        status, err = r.status, (await r.json())["error"]
                except aiohttp.ClientError:
                    continue  # closed while we were still sending: the size check is below
                assert status == 413, (path, framing, err)
                assert err["code"] == "body_too_large", err
                assert "at most" in err["message"], err
    assert rss_bytes(d) - before < RSS_BUDGET
    # The limits are per route: the default for JSON control routes, a world value's own.
    small = b'{"text": "' + b"a" * 200_000 + b'"}'  # over /api/chat's limit (agent.max_text_chars)
    async with aiohttp.ClientSession() as s, s.post(d.url + "/api/chat", data=small,
                                                    headers=JSON) as r:
        assert r.status == 413 and "agent.max_text_chars" in (await r.json())["error"]["message"]
    async with aiohttp.ClientSession() as s:
        async with s.put(d.url + "/api/world/big", json="x" * 60_000) as r:
            assert r.status == 200, await r.text()  # a world value up to world.max_value_bytes
        async with s.put(d.url + "/api/world/big", json="x" * 70_000) as r:
            assert r.status == 413 and (await r.json())["error"]["code"] == "value_too_large"


async def test_an_unsigned_lan_upload_is_refused_before_its_body_is_read(
        lan_daemon: Callable[..., Any], cluster_key: Path, tmp_path: Path) -> None:
    """Red team: the guard read whole bodies before looking for signature headers: 12 unsigned
    16 MB PUTs added 200 MB, and an unsigned 17 MiB body got 413 instead of 401. Now a
    stranger on the LAN is refused from the headers alone: over plain HTTP with a redirect
    to HTTPS, over HTTPS with 401; a node's unsigned request over the node link with 401."""
    d, url = await lan_daemon(world={"mode": "local", "serve": True})
    host, port = url.removeprefix("https://").split(":")
    # Headers that announce 17 MiB, and not one byte of body: the refusal comes at once.
    head = (f"PUT /api/world/k HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {17 * MIB}\r\n\r\n").encode()
    started = time.monotonic()
    status, raw = await raw_request(host, int(port), head)
    assert status == 308 and b"Location: https://" in raw, raw[:300]
    status, raw = await raw_request(host, int(port), head, tls=True)
    assert status == 401, raw[:300]
    assert b"sign in" in raw and time.monotonic() - started < 10
    chunked = (f"PUT /api/world/k HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n10000\r\n").encode() + b"[" * 0x10000
    status, raw = await raw_request(host, int(port), chunked, tls=True)
    assert status == 401, raw[:300]
    before = rss_bytes(d)
    body = flood(16 * MIB)
    results = await asyncio.gather(*(raw_request(host, int(port), head.replace(
        str(17 * MIB).encode(), str(len(body)).encode()), body, tls=True) for _ in range(12)))
    assert [s for s, _ in results] == [401] * 12
    assert rss_bytes(d) - before < RSS_BUDGET
    # Over the node link: unsigned is 401 before the body, signed still works.
    peer = TestPeer(tmp_path / "peer", cluster_key.read_bytes())
    try:
        status, err = await peer.call(url, "PUT", "/api/world/k", b"[" * 100_000, sign=False)
        assert status == 401 and "not signed" in err["error"]["message"]
        status, _ = await peer.call(url, "PUT", "/api/world/k", json.dumps({"ok": True}).encode())
        assert status == 200
    finally:
        await peer.close()


async def test_a_value_too_deep_to_serve_is_never_stored(daemon_factory: Callable[..., Any]
                                                         ) -> None:
    """Red team: a 973-deep value was stored (200), and GET /api/world answered 500 from then
    on, across restarts, until the key was deleted."""
    d = await daemon_factory(world={"mode": "local"})
    value = "[" * 973 + "1" + "]" * 973
    deepest_allowed: Any = 1
    for _ in range(jsonbounds.MAX_DEPTH - 1):
        deepest_allowed = {"a": deepest_allowed}
    async with aiohttp.ClientSession() as s:
        async with s.put(d.url + "/api/world/deep", data=value, headers=JSON) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "json_too_deep"
        async with s.put(d.url + "/api/world/ok", json=deepest_allowed) as r:
            assert r.status == 200, await r.text()
        async with s.get(d.url + "/api/world") as r:
            assert r.status == 200
            assert [e["key"] for e in (await r.json())["entries"]] == ["ok"]
        async with s.get(d.url + "/api/world/deep") as r:
            assert r.status == 404


def test_the_depth_scan_ignores_brackets_in_strings_and_is_linear() -> None:
    assert not jsonbounds.depth_exceeds(json.dumps({"t": "[" * 10_000}))
    assert not jsonbounds.depth_exceeds(json.dumps(["\\\"[" * 1000]))
    assert jsonbounds.depth_exceeds("[" * 65 + "]" * 65)
    assert not jsonbounds.depth_exceeds("[" * 64 + "]" * 64)
    # An unterminated string full of escaped quotes once made the scan quadratic.
    evil = b'"' + b'\\"' * 500_000
    started = time.perf_counter()
    assert not jsonbounds.depth_exceeds(b"[" * 10 + evil)
    assert time.perf_counter() - started < 2.0  # quadratic took minutes
    with pytest.raises(jsonbounds.JsonTooDeep):
        jsonbounds.loads("[" * 100_000)


async def test_superscript_limits_and_trailing_newlines_are_refused(
        daemon_factory: Callable[..., Any]) -> None:
    """Red team: ?limit=² was a 500 (str.isdigit takes it); keys and conversation ids took a
    trailing newline (``$`` in the patterns)."""
    d = await daemon_factory(world={"mode": "local"})
    async with aiohttp.ClientSession() as s:
        for limit in ("%C2%B2", "%D9%A3", "1%0A", "-1", "0", "10001"):
            async with s.get(f"{d.url}/api/world?limit={limit}") as r:
                assert r.status == 400, limit
                assert (await r.json())["error"]["param"] == "limit"
        async with s.put(f"{d.url}/api/world/kitchen%0A", json=1) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_key"
        async with s.get(f"{d.url}/api/world/kitchen%0A") as r:
            assert r.status == 400
        async with s.put(f"{d.url}/api/world/kitchen", json=1,
                         headers={"If-Match": "\u00b2"}) as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "If-Match"
        async with s.post(f"{d.url}/api/chat", json={"text": "hi", "conversation_id": "c1\n"}
                          ) as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "conversation_id"
    assert "Traceback" not in d.log()
