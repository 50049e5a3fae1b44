"""A real daemon's shutdown: STOPPING=1, real in-flight requests drained, exit 0; STATUS= updates.

The in-flight request is a real ``PUT /api/world/{key}`` whose body the test
sends in two halves over a raw socket: the handler is running (it waits for
the rest of the body) until the test sends the second half, or never.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal

import pytest

GRACE_S = 0.5  # the "never finishes" case: a short grace that must run out
WAIT_S = 30.0


class HalfSentPut:
    """A PUT whose body arrives in two parts, so it stays in flight in between."""

    def __init__(self, port: int, key: str, value: object) -> None:
        self.port = port
        self.key = key
        self.body = json.dumps(value).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send_first_half(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = (f"PUT /api/world/{self.key} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(self.body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        self.writer.write(head + self.body[: len(self.body) // 2])
        await self.writer.drain()

    async def finish(self) -> tuple[int, dict[str, object]]:
        """Send the rest; the response's status and JSON body."""
        assert self.reader is not None and self.writer is not None
        self.writer.write(self.body[len(self.body) // 2:])
        await self.writer.drain()
        raw = await asyncio.wait_for(self.reader.read(), WAIT_S)  # Connection: close -> EOF
        head, _, payload = raw.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, json.loads(payload)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def wait_inflight(d, n: int) -> None:
    """Wait until /api/status counts ``n`` requests in flight (the handler has begun)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            _, body = await d.get_json("/api/status")
            if body["inflight"] == n:
                return
            await asyncio.sleep(0.05)  # polling a condition, not hoping a fixed time suffices


async def wait_logged(d, text: str) -> None:
    """Wait until the daemon's output contains ``text``."""
    async with asyncio.timeout(WAIT_S):
        while True:
            if text in d.log():
                return
            await asyncio.sleep(0.05)  # polling the log file for the condition


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_request_in_flight_at_the_signal_completes_and_exit_is_0(daemon_factory, sig):
    d = await daemon_factory(world={"mode": "local"})
    put = HalfSentPut(d.port, "greeting", {"text": "hello from before the signal"})
    try:
        await put.send_first_half()
        await wait_inflight(d, 1)
        assert d.proc is not None
        d.proc.send_signal(sig)
        stopping = await d.notify.wait_for("STOPPING=1", WAIT_S)
        assert "draining 1 request(s)" in stopping, stopping
        # The daemon is stopping but still waiting for this request: it completes.
        status, body = await put.finish()
        assert status == 200, body
        assert body["key"] == "greeting" and body["value"] == {
            "text": "hello from before the signal"}
    finally:
        put.close()
    rc = await d.wait()
    assert rc == 0, d.log()
    log = d.log()
    assert "draining 1 in-flight request(s)" in log and "ran out" not in log, log
    if sig == signal.SIGINT:
        return  # the restart below is the same for both signals
    # The write was kept: it is in the journal a restarted node reads.
    d2 = await daemon_factory(world={"mode": "local"},
                              node={"state_dir": d.config["node"]["state_dir"]})
    code, entry = await d2.get_json("/api/world/greeting")
    assert code == 200 and entry["value"]["text"] == "hello from before the signal"


async def test_a_request_that_never_finishes_cannot_hold_the_exit(daemon_factory):
    d = await daemon_factory(world={"mode": "local"}, http={"shutdown_grace_s": GRACE_S})
    put = HalfSentPut(d.port, "stuck", {"never": "sent in full"})
    try:
        await put.send_first_half()
        await wait_inflight(d, 1)
        assert d.proc is not None
        d.proc.send_signal(signal.SIGTERM)
        await d.notify.wait_for("STOPPING=1", WAIT_S)
        rc = await d.wait()  # the second half is never sent
    finally:
        put.close()
    assert rc == 0, d.log()
    assert f"grace of {GRACE_S:.1f}s ran out with 1 request(s) in flight" in d.log(), d.log()


async def test_new_requests_are_refused_while_draining(daemon_factory):
    d = await daemon_factory(world={"mode": "local"})
    put = HalfSentPut(d.port, "held", {"n": 1})
    try:
        await put.send_first_half()
        await wait_inflight(d, 1)
        assert d.proc is not None
        d.proc.send_signal(signal.SIGTERM)
        await d.notify.wait_for("STOPPING=1", WAIT_S)
        code, body = await d.get_json("/api/world")
        assert code == 503 and body["error"]["code"] == "stopping", body
        code, health = await d.get_json("/health")
        assert code == 503 and health["status"] == "stopping"
        status, _ = await put.finish()
        assert status == 200
    finally:
        put.close()
    assert await d.wait() == 0, d.log()


async def test_status_line_is_sent_again_when_it_changes(daemon_factory):
    d = await daemon_factory(world={"mode": "local"})
    ready = next(m for _, m in d.notify.messages if "READY=1" in m)
    first = next(line for line in ready.splitlines() if line.startswith("STATUS="))
    assert first.endswith("0 in flight"), first
    put = HalfSentPut(d.port, "k", {"v": 1})
    try:
        await put.send_first_half()  # the node's state changes: one request in flight
        changed = await d.notify.wait_for("STATUS=", WAIT_S)
        while "1 in flight" not in changed:
            changed = await d.notify.wait_for("STATUS=", WAIT_S)
        assert changed.startswith("STATUS=edge: ready;") and changed != first, changed
        status, _ = await put.finish()
        assert status == 200
        back = await d.notify.wait_for("STATUS=", WAIT_S)
        while "0 in flight" not in back:
            back = await d.notify.wait_for("STATUS=", WAIT_S)
    finally:
        put.close()
    # Only changes are sent: no two consecutive STATUS= lines after READY are the same.
    statuses = [line for line in d.notify.lines() if line.startswith("STATUS=")]
    after_ready = statuses[statuses.index(first):]
    assert all(a != b for a, b in itertools.pairwise(after_ready)), after_ready


@pytest.mark.parametrize("level", ["debug", "warning"])
async def test_log_level_comes_from_the_config(daemon_factory, level):
    d = await daemon_factory(logging={"level": level})
    assert await d.stop() == 0
    lines = d.log().splitlines()
    levels = {line.split()[1] for line in lines if len(line.split()) > 1}
    if level == "debug":
        assert "DEBUG" in levels and "INFO" in levels, lines
        assert any("DEBUG   appliance.daemon: starting component agent" in line
                   for line in lines), lines
    else:
        # A box without a cluster key is normal (a NOTICE since issue 15): nothing to say.
        assert not levels & {"DEBUG", "INFO", "NOTICE"}, lines


WATCHDOG_USEC = 400_000  # the daemon pings every 0.2 s
CONTROL_PINGS = 8  # intervals a healthy in-test watchdog counts while the daemon's is sick


async def test_a_full_disk_refuses_world_writes_but_keeps_the_watchdog_pinging(
        tmpfs, daemon_factory, tmp_path):
    """The world store's disk fills up: the write is refused (507) and leaves no trace, but
    the node is not broken, so it keeps pinging (no restart loop on a full disk) and says
    why writes fail. (Withholding the ping for a broken component:
    test_systemd_protocol.py; the full disk in detail: tests/hostile/test_world_faults.py.)"""
    from tests.foundation.conftest import fill

    small = tmpfs("1m")
    d = await daemon_factory(watchdog_usec=WATCHDOG_USEC, world={"mode": "local"},
                             node={"state_dir": str(small / "state")})
    for _ in range(2):
        await d.notify.wait_for("WATCHDOG=1", WAIT_S)  # pinging while healthy
    assert fill(small) > 0
    import aiohttp

    async with aiohttp.ClientSession() as s:
        # A value larger than a page needs new space on the full disk: the journal write fails.
        async with s.put(d.url + "/api/world/big", json={"v": "x" * 16384}) as r:
            assert r.status == 507, await r.text()
            assert "disk is full" in (await r.json())["error"]["message"]
        async with s.get(d.url + "/api/world/big") as r:
            assert r.status == 404
    d.notify.take_pending()
    seen = len(d.notify.messages)
    for _ in range(CONTROL_PINGS):
        await d.notify.wait_for("WATCHDOG=1", WAIT_S)
    assert len(d.notify.messages) > seen
    _, status = await d.get_json("/api/status")
    assert status["components"]["world"]["healthy"] is True
    assert "disk is full" in status["components"]["world"]["last_write_error"]
    assert "withholding" not in d.log()
    _, health = await d.get_json("/health")
    assert health["unhealthy"] == [] and health["ready"] is True
    assert await d.stop() == 0
