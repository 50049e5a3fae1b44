"""The daemon speaks sd_notify correctly to a real AF_UNIX datagram socket."""

from __future__ import annotations

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


CONTROL_INTERVALS = 6  # intervals a healthy control watchdog pings while the other is sick


async def test_unhealthy_component_withholds_watchdog(tmp_path):
    """While a component is unhealthy no ping is sent, measured against a healthy control.

    Both watchdogs run on the same loop with the same interval, so however slow
    this box is, the control's pings count the intervals that really elapsed.
    """
    sock = NotifySocket(tmp_path / "n.sock")
    control_sock = NotifySocket(tmp_path / "control.sock")
    healthy = {"ok": True}
    wd = Watchdog(Notifier(env={"NOTIFY_SOCKET": str(sock.path)}),
                  healthy=lambda: healthy["ok"], interval_s=0.05)
    control = Watchdog(Notifier(env={"NOTIFY_SOCKET": str(control_sock.path)}),
                       healthy=lambda: True, interval_s=0.05)
    wd.start()
    control.start()
    try:
        await sock.wait_for("WATCHDOG=1", timeout=5)
        healthy["ok"] = False
        sock.take_pending()
        before = len(sock.messages)
        target = control.pings + CONTROL_INTERVALS
        while control.pings < target:  # each arrival is one interval elapsed on this loop
            await control_sock.wait_for("WATCHDOG=1", timeout=5)
        sock.take_pending()
        withheld = sock.messages[before:]
        # At most the one ping already decided as health flipped; none per interval after.
        assert len(withheld) <= 1, withheld
        healthy["ok"] = True
        await sock.wait_for("WATCHDOG=1", timeout=5)
    finally:
        await wd.stop()
        await control.stop()
        sock.close()
        control_sock.close()


def test_a_full_notify_queue_never_blocks_the_caller(tmp_path, caplog):
    """Nobody reads the socket: sends are dropped and logged once, never blocking the loop."""
    sock = NotifySocket(tmp_path / "n.sock")  # never attached, never read
    try:
        notifier = Notifier(env={"NOTIFY_SOCKET": str(sock.path)})
        queued = fill_until_send_would_block(sock.path)  # whatever the kernel's queue size
        for i in range(100):
            notifier.status(f"line {i}")  # each would block: each is dropped at once
        dropped = [r for r in caplog.records if "sd_notify STATUS failed" in r.getMessage()]
        assert len(dropped) == 1  # logged once, not per message
        arrived = sock.take_pending()
        assert len(arrived) == queued and not any(m.startswith("STATUS=line") for m in arrived)
    finally:
        sock.close()


def fill_until_send_would_block(path) -> int:
    """Send filler datagrams to ``path`` until the kernel refuses one; how many it took."""
    import socket

    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sent = 0
    try:
        while True:
            try:
                sender.sendto(f"STATUS=filler {sent}".encode(), socket.MSG_DONTWAIT,
                              str(path))
            except BlockingIOError:
                return sent  # the queue is really full: the next send would block
            sent += 1
            assert sent < 1_000_000, "the notify queue never filled"
    finally:
        sender.close()


def test_ready_and_stopping_wait_for_room_in_a_full_queue(tmp_path, caplog):
    """Essential messages are not dropped: they wait (bounded) until the receiver reads."""
    import threading

    sock = NotifySocket(tmp_path / "n.sock")
    try:
        notifier = Notifier(env={"NOTIFY_SOCKET": str(sock.path)})
        queued = fill_until_send_would_block(sock.path)
        assert queued > 0
        notifier.status("dropped")  # not essential: dropped at once, and logged
        assert any("sd_notify STATUS failed" in r.getMessage() for r in caplog.records)
        calling = threading.Event()
        drained: list[str] = []

        def reader() -> None:
            calling.wait(10)
            # Make room only after the sender has begun; read until STOPPING=1 arrives.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                drained.extend(sock.take_pending())
                if any("STOPPING=1" in m for m in drained):
                    return
                time.sleep(0.01)  # polling the socket for the condition, bounded by deadline

        thread = threading.Thread(target=reader)
        thread.start()
        calling.set()
        notifier.ready("ready now")  # the queue is full: this waits for the reader
        notifier.stopping()
        thread.join()
        lines = [line for m in drained for line in m.splitlines()]
        assert "READY=1" in lines and "STOPPING=1" in lines, lines[-5:]
        assert lines.index("READY=1") < lines.index("STOPPING=1")
        # Every filler sent before READY=1 was delivered before it: nothing overtook.
        assert lines.index("READY=1") >= queued
        assert not any("sd_notify READY failed" in r.getMessage() for r in caplog.records)
    finally:
        sock.close()
