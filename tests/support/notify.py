"""A real AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import time
from pathlib import Path


class NotifySocket:
    """Receives sd_notify datagrams; each message is kept with its arrival time."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="notify-")) / "notify.sock"
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.messages: list[tuple[float, str]] = []

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    async def recv(self, timeout: float) -> str:
        """The next datagram (all its lines), or TimeoutError."""
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
        text = data.decode()
        self.messages.append((time.monotonic(), text))
        return text

    async def wait_for(self, prefix: str, timeout: float) -> str:
        """Receive until a line starts with ``prefix``; that datagram."""
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
