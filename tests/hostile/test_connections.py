"""Issue 15, item 2: every connection is timed out and their number is capped, with real
sockets: a slowloris, a silent socket, a trickled body, 1100 idle sockets from a LAN host."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from tests.hostile.conftest import raw_request
from tests.lan.netlab import Lan

IDLE_S = 2.0
BODY_S = 3.0
#: How long past its timeout a connection may take to be closed (a loaded 2-core box).
SLACK_S = 5.0
REPO = Path(__file__).resolve().parents[2]


async def closed_after(reader: asyncio.StreamReader, limit_s: float) -> float:
    """Seconds until the server closed the connection, at most limit_s: reads return EOF,
    or the connection is reset (the kernel answers a close with RST when bytes the client
    sent, such as a slowloris's next header line, were still unread)."""
    started = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(65536), limit_s):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


async def test_silent_half_sent_and_trickling_connections_are_closed(
        daemon_factory: Callable[..., Any]) -> None:
    """Red team: a half-sent request and a silent connection were still open after 240 s."""
    d = await daemon_factory(world={"mode": "local"},
                             http={"idle_timeout_s": IDLE_S, "body_timeout_s": BODY_S})
    silent = await asyncio.open_connection("127.0.0.1", d.port)
    half = await asyncio.open_connection("127.0.0.1", d.port)
    half[1].write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    # A slowloris: one header byte every half second, never the end of the headers.
    loris = await asyncio.open_connection("127.0.0.1", d.port)
    loris[1].write(b"GET /health HTTP/1.1\r\n")

    async def drip() -> None:
        for _ in range(40):
            await asyncio.sleep(0.5)
            try:
                loris[1].write(b"X-A: b\r\n")
                await loris[1].drain()
            except ConnectionError:
                return

    dripping = asyncio.ensure_future(drip())
    waits = await asyncio.gather(*(closed_after(r, IDLE_S + SLACK_S)
                                   for r, _ in (silent, half, loris)))
    dripping.cancel()
    assert all(w <= IDLE_S + SLACK_S for w in waits), waits
    # A body that trickles in: 408 once http.body_timeout_s is over, not an open socket.
    reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
    writer.write(b"PUT /api/world/k HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: 100\r\n\r\n[")
    started = time.monotonic()
    answer = await asyncio.wait_for(reader.read(65536), BODY_S + SLACK_S)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"body_timeout" in answer and time.monotonic() - started >= BODY_S - 0.5
    for _, w in (silent, half, loris, (reader, writer)):
        w.close()
    # The server still answers, and nothing of this was a traceback.
    status, _ = await d.get_json("/health")
    assert status == 200 and "Traceback" not in d.log()


def _hold(lan: Lan, count: int, host: str, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", lan.ns("cli"), sys.executable, "-m",
                             "tests.hostile.lanclient", "hold", str(count), host, str(port)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)


async def _health_from_the_box(lan: Lan, port: int) -> str:
    """curl's status for /health over the daemon's own loopback, inside its namespace."""
    done = await asyncio.to_thread(
        subprocess.run, ["ip", "netns", "exec", lan.ns("srv"), "curl", "-s", "-o", "/dev/null",
                         "-w", "%{http_code}", "--max-time", "10",
                         f"http://127.0.0.1:{port}/health"],
        capture_output=True, text=True, check=False)
    return str(done.stdout)


async def _health(url: str) -> tuple[int, float]:
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(url + "/health", ssl=False,  # self-signed
                                                   timeout=aiohttp.ClientTimeout(total=10)) as r:
        await r.read()
        return r.status, time.monotonic() - started


async def test_1100_idle_lan_sockets_do_not_starve_health_or_flood_the_log(
        lan: Lan, lan_daemon: Callable[..., Any]) -> None:
    """Red team: 1100 idle LAN sockets made /health time out and the accept loop logged
    162,483 "Too many open files" tracebacks in 25 s."""
    d, url = await lan_daemon(http={"host": "0.0.0.0", "idle_timeout_s": 60.0})
    host, port = lan.addr("srv"), d.port
    holder = _hold(lan, 1100, host, port)
    try:
        assert holder.stdout is not None
        counts = json.loads(await asyncio.to_thread(holder.stdout.readline))
        # One LAN address gets http.max_connections_per_client (64); the rest a 503 at once.
        assert counts["held"] == 64 and counts["refused"] == 1100 - 64, counts
        status, took = await _health(url)  # another LAN host
        assert status == 200, took
        assert await _health_from_the_box(lan, port) == "200"
    finally:
        out, _ = await asyncio.to_thread(holder.communicate, "", 60)
    assert json.loads(out.splitlines()[-1])["still_open"] == 64
    log = d.log()
    assert "Traceback" not in log and "Too many open files" not in log
    # Refusals are logged, a line per ten seconds at most, with the count of the others.
    assert 1 <= log.count("refusing a connection") <= 3, log[-2000:]


async def test_the_connection_cap_keeps_room_for_loopback(
        lan: Lan, lan_daemon: Callable[..., Any]) -> None:
    """http.max_connections is for everyone; loopback (the box's own UI, CLI and health
    checks) has a reserve beyond it."""
    d, url = await lan_daemon(http={"host": "0.0.0.0", "idle_timeout_s": 60.0,
                                    "max_connections": 50, "max_connections_per_client": 1000})
    holder = _hold(lan, 80, lan.addr("srv"), d.port)
    try:
        assert holder.stdout is not None
        counts = json.loads(await asyncio.to_thread(holder.stdout.readline))
        assert counts["held"] == 50 and counts["refused"] == 30, counts
        status, raw = await raw_request(lan.addr("srv"), d.port,
                                        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 503 and b"Retry-After: 5" in raw and b"max_connections" in raw, raw
        assert await _health_from_the_box(lan, d.port) == "200"
    finally:
        await asyncio.to_thread(holder.communicate, "", 60)
    status, _ = await _health(url)
    assert status == 200  # the LAN gets in again once they are gone


async def test_unparsable_requests_are_a_line_in_the_log_not_a_traceback(
        daemon_factory: Callable[..., Any]) -> None:
    """Garbage bytes and a 100 kB header line: 400 and a short WARNING (rate-limited)."""
    d = await daemon_factory()
    for head in (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
                 bytes(range(1, 255)) * 8 + b"\r\n\r\n") * 5:
        status, _ = await raw_request("127.0.0.1", d.port, head)
        assert status in (400, 0)  # 0: closed without an answer, as aiohttp does for garbage
    await d.stop()
    log = d.log()
    assert "Traceback" not in log and "LineTooLong" not in log
    assert 1 <= log.count("Error handling request") <= 2, log[-3000:]


async def test_accept_errors_are_one_line_per_interval_not_a_traceback_each(
        caplog: Any) -> None:
    """Red team: 162,483 "Too many open files" tracebacks in 25 s from the accept loop.
    asyncio reports them through the loop's exception handler, with the OSError."""
    import errno
    import logging

    from appliance.daemon import LoopErrors

    loop = asyncio.get_running_loop()
    handler = LoopErrors(interval_s=60.0)
    emfile = OSError(errno.EMFILE, "Too many open files")
    with caplog.at_level(logging.ERROR, logger="appliance.daemon"):
        for _ in range(10_000):
            handler.handle(loop, {"message": "socket.accept() out of system resource",
                                  "exception": emfile})
    lines = [r for r in caplog.records if "out of system resource" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "Too many open files" in lines[0].getMessage()
