"""sd_notify for the daemon: READY, STATUS, WATCHDOG, STOPPING, EXTEND_TIMEOUT_USEC.

Wraps the ``sdnotify`` package. Without ``$NOTIFY_SOCKET`` every call is a
no-op. Unlike the bare package, send failures are logged (once per kind of
failure, so a vanished socket does not flood the journal), and the watchdog
interval is derived from ``$WATCHDOG_USEC`` / ``$WATCHDOG_PID`` as
sd_watchdog_enabled(3) describes. These variables are systemd's protocol, not
configuration, so they are read here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import sdnotify

log = logging.getLogger(__name__)

# Ping at half the watchdog period, as systemd recommends.
WATCHDOG_FRACTION = 0.5
# READY=1 and STOPPING=1 must arrive: wait this long for room in a full queue.
# STATUS= and WATCHDOG=1 are dropped instead (the next one replaces them), so a
# receiver that stalls can never stall the event loop for long.
ESSENTIAL_SEND_TIMEOUT_S = 5.0


class Notifier:
    """Sends sd_notify messages, or nothing when not run by systemd."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._socket_path = env.get("NOTIFY_SOCKET", "")
        self._watchdog_usec = _watchdog_usec(env)
        self._notifier: sdnotify.SystemdNotifier | None = None
        self._failed: set[str] = set()
        self.sent: list[str] = []  # last messages, for status and tests
        if self._socket_path:
            try:
                # sdnotify reads $NOTIFY_SOCKET itself; debug=True makes it raise.
                saved = os.environ.get("NOTIFY_SOCKET")
                os.environ["NOTIFY_SOCKET"] = self._socket_path
                try:
                    self._notifier = sdnotify.SystemdNotifier(debug=True)
                finally:
                    if saved is None:
                        os.environ.pop("NOTIFY_SOCKET", None)
                    else:
                        os.environ["NOTIFY_SOCKET"] = saved
            except OSError as exc:
                log.warning("cannot connect to $NOTIFY_SOCKET %s: %s", self._socket_path, exc)

    @property
    def enabled(self) -> bool:
        return self._notifier is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """Seconds between WATCHDOG=1 pings, or None when systemd wants none."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 1_000_000 * WATCHDOG_FRACTION

    def ready(self, status: str | None = None) -> None:
        self._send("READY=1" + _status(status), essential=True)

    def status(self, text: str) -> None:
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> None:
        self._send("STOPPING=1" + _status(status), essential=True)

    def extend_timeout(self, seconds: float, status: str | None = None) -> None:
        self._send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}" + _status(status),
                   essential=True)

    def _send(self, message: str, *, essential: bool = False) -> None:
        if self._notifier is None:
            return
        # 0.0 is non-blocking: a full queue raises at once instead of waiting.
        self._notifier.socket.settimeout(ESSENTIAL_SEND_TIMEOUT_S if essential else 0.0)
        try:
            self._notifier.notify(message)
        except OSError as exc:
            kind = message.split("=", 1)[0]
            if kind not in self._failed:
                self._failed.add(kind)
                log.warning("sd_notify %s failed: %s", kind, exc)
            return
        self._failed.discard(message.split("=", 1)[0])
        self.sent.append(message)
        del self.sent[:-20]


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    raw = env.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("ignoring malformed $WATCHDOG_USEC %r", raw)
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None  # meant for another process
        except ValueError:
            log.warning("ignoring malformed $WATCHDOG_PID %r", pid)
            return None
    return usec if usec > 0 else None


def _status(text: str | None) -> str:
    return f"\nSTATUS={_one_line(text)}" if text else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())[:400]
