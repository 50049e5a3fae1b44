"""Start a real `hybrid-agent run` in a subprocess and await its READY=1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.notify import NotifySocket

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def minimal_config(state_dir: Path, port: int, **sections: dict[str, Any]) -> dict[str, Any]:
    """A config with everything optional off; ``sections`` are merged over it."""
    cfg: dict[str, Any] = {
        "node": {"state_dir": str(state_dir), "tier": "edge", "name": "test-node"},
        "http": {"host": "127.0.0.1", "port": port, "shutdown_grace_s": 5.0},
        "logging": {"level": "debug"},
        "discovery": {"enabled": False},
        "llm": {"mode": "off"},
        "voice": {"enabled": False},
        "world": {"mode": "off"},
        "security": {"cluster_key_file": str(state_dir / "cluster.key")},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


class DaemonProcess:
    """A daemon subprocess with its own config file and notify socket."""

    def __init__(self, tmp: Path, config: dict[str, Any], *, env: dict[str, str] | None = None,
                 watchdog_usec: int | None = None, netns: str | None = None,
                 command: str = "run") -> None:
        self.tmp = tmp
        self.config = config
        self.config_path = tmp / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.notify = NotifySocket(tmp / "notify.sock")
        self.extra_env = env or {}
        self.watchdog_usec = watchdog_usec
        self.netns = netns
        self.command = command  # `hybrid-agent run`, or `tools-server`
        self.proc: asyncio.subprocess.Process | None = None
        self.log_path = tmp / "daemon.log"

    @property
    def port(self) -> int:
        return int(self.config["http"]["port"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def node_url(self) -> str:
        """The same port as other nodes reach it: TLS (loopback here)."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return Path(self.config["node"]["state_dir"])

    async def start(self, *, wait_ready: bool = True) -> None:
        env = {k: v for k, v in os.environ.items()
               if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")}
        env["NOTIFY_SOCKET"] = str(self.notify.path)
        env["PYTHONUNBUFFERED"] = "1"
        if self.watchdog_usec is not None:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        env.update(self.extra_env)
        argv = [sys.executable, "-m", "appliance.cli", self.command, "--config",
                str(self.config_path)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.notify.attach()  # read continuously, as systemd does
        self._log = open(self.log_path, "wb")
        self.proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=self._log, stderr=asyncio.subprocess.STDOUT,
            cwd=str(Path(__file__).resolve().parents[2]))
        if wait_ready:
            await self.wait_ready()

    async def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        assert self.proc is not None
        ready = asyncio.ensure_future(self.notify.wait_for("READY=1", timeout))
        died = asyncio.ensure_future(self.proc.wait())
        done, _ = await asyncio.wait({ready, died}, return_when=asyncio.FIRST_COMPLETED)
        if died in done:
            ready.cancel()
            raise RuntimeError(f"daemon exited with {self.proc.returncode} before READY=1:\n"
                               + self.log())
        died.cancel()
        ready.result()

    async def wait(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Wait for the daemon to exit by itself; its exit status."""
        assert self.proc is not None
        await asyncio.wait_for(self.proc.wait(), timeout)
        return await self.stop()  # already exited: only closes the log and socket

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the daemon and return its exit status."""
        if self.proc is None:
            return 0
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            rc = await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            self.proc.kill()
            rc = await self.proc.wait()
        if not self._log.closed:
            self._log.close()
            self.notify.close()
        return rc

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    async def get_json(self, path: str) -> tuple[int, Any]:
        import aiohttp

        async with aiohttp.ClientSession() as s, s.get(self.url + path) as r:
            return r.status, json.loads(await r.text())
