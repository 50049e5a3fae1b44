"""A real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import time
from collections import deque
from pathlib import Path


class NotifySocket:
    """Receives sd_notify datagrams, read continuously as systemd does.

    Once attached to a running loop (``attach()``, or the first ``recv``) the
    socket is drained whenever it is readable, so a daemon never finds the
    kernel's small datagram queue (net.unix.max_dgram_qlen) full. Every
    message is kept in ``messages`` with its arrival time; ``recv`` hands out
    the ones not yet taken, in order.
    """

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="notify-")) / "notify.sock"
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[tuple[float, str]] = []
        self._unread: deque[str] = deque()
        self._arrived = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self) -> None:
        """Start draining the socket from the running loop (idempotent)."""
        if self._loop is None and self.sock.fileno() >= 0:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self.sock.fileno(), self.take_pending)

    def close(self) -> None:
        if self._loop is not None and self.sock.fileno() >= 0:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def take_pending(self) -> list[str]:
        """Read whatever the kernel holds now, without waiting; the new messages."""
        new = []
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, OSError):
                break
            text = data.decode()
            self.messages.append((time.monotonic(), text))
            self._unread.append(text)
            new.append(text)
        if new:
            self._arrived.set()
        return new

    async def recv(self, timeout: float) -> str:
        """The next message not yet taken (all its lines), or TimeoutError."""
        self.attach()
        self.take_pending()
        async with asyncio.timeout(timeout):
            while not self._unread:
                self._arrived.clear()
                await self._arrived.wait()
        return self._unread.popleft()

    async def wait_for(self, prefix: str, timeout: float) -> str:
        """Take messages until one has a line starting with ``prefix``; that message."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {prefix!r} within {timeout}s; got "
                                   f"{[m for _, m in self.messages]}")
            text = await self.recv(left)
            if any(line.startswith(prefix) for line in text.splitlines()):
                return text

    def lines(self) -> list[str]:
        return [line for _, m in self.messages for line in m.splitlines()]
