"""The daemon speaks sd_notify correctly to a real AF_UNIX datagram socket."""

from __future__ import annotations

import asyncio
import signal
import time

from appliance.daemon import Watchdog
from appliance.systemd import Notifier
from tests.support.notify import NotifySocket

WATCHDOG_USEC = 400_000  # pings every 0.2 s


async def test_ready_status_watchdog_stopping_in_order(daemon_factory):
    d = await daemon_factory(watchdog_usec=WATCHDOG_USEC)
    pings = 0
    while pings < 3:  # three pings after READY prove they repeat
        pings += await d.notify.recv(timeout=5) == "WATCHDOG=1"
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    await d.notify.wait_for("STOPPING=1", timeout=10)
    rc = await d.wait()
    assert rc == 0, d.log()
    lines = d.notify.lines()
    ready = lines.index("READY=1")
    status = next(i for i, m in enumerate(lines) if i > ready and m.startswith("STATUS="))
    first_ping = lines.index("WATCHDOG=1")
    stopping = lines.index("STOPPING=1")
    assert ready < status < first_ping < stopping, lines
    assert lines[first_ping:stopping].count("WATCHDOG=1") >= 3
    # Nothing claims readiness after STOPPING=1.
    assert "READY=1" not in lines[stopping:]


async def test_status_line_says_what_the_node_does(daemon_factory):
    d = await daemon_factory()
    ready = next(m for _, m in d.notify.messages if "READY=1" in m)
    status = [line for line in ready.splitlines() if line.startswith("STATUS=")]
    assert status and status[0].startswith("STATUS=edge: ready"), ready


async def test_no_notify_socket_means_no_messages_and_no_error(tmp_path):
    notifier = Notifier(env={})
    assert not notifier.enabled
    notifier.ready("x")
    notifier.watchdog()
    assert notifier.sent == []
    assert notifier.watchdog_interval_s is None


def test_watchdog_interval_is_half_of_watchdog_usec_and_honours_pid(tmp_path):
    sock = NotifySocket(tmp_path / "n.sock")
    try:
        env = {"NOTIFY_SOCKET": str(sock.path), "WATCHDOG_USEC": "3000000"}
        assert Notifier(env=env).watchdog_interval_s == 1.5
        other = dict(env, WATCHDOG_PID="1")
        assert Notifier(env=other).watchdog_interval_s is None
        import os

        mine = dict(env, WATCHDOG_PID=str(os.getpid()))
        assert Notifier(env=mine).watchdog_interval_s == 1.5
    finally:
        sock.close()


def test_send_failure_is_logged_not_raised(tmp_path, caplog):
    sock = NotifySocket(tmp_path / "n.sock")
    notifier = Notifier(env={"NOTIFY_SOCKET": str(sock.path)})
    sock.close()  # the receiver vanishes, as when systemd restarts
    notifier.status("hello")
    notifier.status("again")
    warnings = [r for r in caplog.records if "sd_notify STATUS failed" in r.getMessage()]
    assert len(warnings) == 1  # logged once, not per message


async def test_abstract_notify_socket(tmp_path):
    import socket

    name = f"hybrid-agent-test-{time.monotonic_ns()}"
    recv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    recv.bind("\0" + name)
    recv.settimeout(5)
    try:
        Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready("abstract ok")
        assert recv.recv(1024).decode().startswith("READY=1")
    finally:
        recv.close()


async def test_blocking_the_event_loop_stops_watchdog_pings(tmp_path):
    sock = NotifySocket(tmp_path / "n.sock")
    notifier = Notifier(env={"NOTIFY_SOCKET": str(sock.path)})
    wd = Watchdog(notifier, healthy=lambda: True, interval_s=0.05)
    wd.start()
    try:
        await sock.wait_for("WATCHDOG=1", timeout=5)
        await sock.wait_for("WATCHDOG=1", timeout=5)
        # Block the loop on purpose, then look at what arrived meanwhile.
        sock.take_pending()
        time.sleep(1.0)  # blocking the loop is the point of the test
        arrived = sock.take_pending()
        # At most one ping can have been in flight as the block began.
        assert len(arrived) <= 1, arrived
        # After the block the pings resume.
        await sock.wait_for("WATCHDOG=1", timeout=5)
    finally:
        await wd.stop()
        sock.close()


async def test_unhealthy_component_withholds_watchdog(tmp_path):
    sock = NotifySocket(tmp_path / "n.sock")
    notifier = Notifier(env={"NOTIFY_SOCKET": str(sock.path)})
    healthy = {"ok": True}
    wd = Watchdog(notifier, healthy=lambda: healthy["ok"], interval_s=0.05)
    wd.start()
    try:
        await sock.wait_for("WATCHDOG=1", timeout=5)
        healthy["ok"] = False
        before = wd.pings
        await asyncio.sleep(0.5)
        assert wd.pings <= before + 1
        healthy["ok"] = True
        await sock.wait_for("WATCHDOG=1", timeout=5)
    finally:
        await wd.stop()
        sock.close()


def test_a_full_notify_queue_never_blocks_the_caller(tmp_path, caplog):
    """Nobody reads the socket: sends are dropped and logged once, never blocking the loop."""
    sock = NotifySocket(tmp_path / "n.sock")  # never attached, never read
    try:
        notifier = Notifier(env={"NOTIFY_SOCKET": str(sock.path)})
        for i in range(2000):  # far beyond any kernel datagram queue
            notifier.status(f"line {i}")
        dropped = [r for r in caplog.records if "sd_notify STATUS failed" in r.getMessage()]
        assert len(dropped) == 1
        assert 0 < len(sock.take_pending()) < 2000
    finally:
        sock.close()


def test_ready_and_stopping_wait_for_room_in_a_full_queue(tmp_path):
    """Essential messages are not dropped: they wait (bounded) until the receiver reads."""
    import threading

    sock = NotifySocket(tmp_path / "n.sock")
    try:
        notifier = Notifier(env={"NOTIFY_SOCKET": str(sock.path)})
        for i in range(100):
            notifier.status(f"filler {i}")  # fills the queue; the rest are dropped
        drained: list[str] = []
        reader = threading.Timer(0.3, lambda: drained.extend(sock.take_pending()))
        reader.start()
        notifier.ready("ready now")  # blocks until the reader makes room
        notifier.stopping()
        reader.join()
        drained.extend(sock.take_pending())
        lines = [line for m in drained for line in m.splitlines()]
        assert "READY=1" in lines and "STOPPING=1" in lines
        assert lines.index("READY=1") < lines.index("STOPPING=1")
    finally:
        sock.close()
