"""The "rpc_worker" component: this box lends its memory and CPU to a core's split model.

It supervises the ``serve`` child (ggml's RPC server on 127.0.0.1 at a free port),
restarting it with backoff when it ends, and puts it behind the link's TLS
listener on ``llm.rpc_port`` (appliance.llm.rpc.tunnel). While the server runs,
the node has the role ``rpc`` and its TXT record carries ``rpc`` (the link's
port) and ``mem`` (the MiB it can lend). No socket on this box takes raw ggml
RPC on any address but 127.0.0.1.

Why a child and not a thread of the daemon: ggml's server loop never returns and
has no stop, a fault in it (it has had memory-safety bugs reachable from its
socket) would take the whole daemon down, and its memory is the model's: a child
is killed, restarted and accounted for on its own (docs/rpc.md has the numbers).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any

from appliance.config import Config
from appliance.hardware import available_memory
from appliance.llm.chat import LLMError
from appliance.llm.rpc import process
from appliance.llm.rpc.link import LinkTrust, prepare
from appliance.llm.rpc.sockets import listening
from appliance.llm.rpc.tunnel import LinkServer
from appliance.node import Component, Node
from appliance.tasks import cancel_and_wait

log = logging.getLogger(__name__)

LISTEN_WAIT_S = 20.0
LISTEN_POLL_S = 0.05
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
STABLE_S = 60.0  # a server that ran this long restarts at once again after its next end
MIB = 1024 * 1024
MEM_STEP_MB = 256  # the TXT's ``mem`` is rounded down to this, so it does not churn


class RpcWorker(Component):
    """ggml's RPC server as a supervised child, reachable only through the TLS link."""

    name = "rpc_worker"
    start_timeout_s = LISTEN_WAIT_S + 10.0

    def __init__(self, config: Config, node: Node, threads: int) -> None:
        self._cfg = config.llm
        self._host = config.http.host
        self._node = node
        self.threads = threads
        self.port: int | None = None
        """ggml's loopback port while its server runs."""
        self.restarts = 0
        self.last_exit = ""
        self.problem = ""
        self._trust: LinkTrust | None = None
        self._server: LinkServer | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()

    # ------------------------------------------------------------ Component

    async def start(self) -> None:
        self._trust, why = await prepare(self._node, "llm.rpc_serve")
        if self._trust is None:
            self.problem = why
            log.error("rpc worker: not lending this box: %s", why)
            return
        self._server = LinkServer(self._trust, self._host, self._cfg.rpc_port,
                                  target=lambda: self.port, status=self._probe_answer)
        try:
            await self._server.start()
        except OSError as exc:
            self._server = None
            raise LLMError(f"llm.rpc_port: cannot listen on {self._host}:{self._cfg.rpc_port}"
                           f": {exc.strerror or exc}") from None
        self._task = asyncio.get_running_loop().create_task(self._supervise(),
                                                            name="rpc-worker")
        try:
            await asyncio.wait_for(self._up.wait(), LISTEN_WAIT_S)
        except TimeoutError:
            raise LLMError("the RPC server did not start: "
                           + (self.last_exit or f"not listening after {LISTEN_WAIT_S:g}s")
                           ) from None

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None
        await process.stop(self._proc)
        self._set_down()
        if self._server is not None:
            await self._server.stop()
            self._server = None

    def describe(self) -> dict[str, Any]:
        server = self._server
        return {"serving": self.port is not None, "problem": self.problem,
                "link": f"{self._host}:{server.port}" if server else "",
                "trust": self._trust.description if self._trust else "",
                "threads": self.threads, "pid": self._proc.pid if self._proc else None,
                "restarts": self.restarts, "last_exit": self.last_exit,
                "free_mb": self.free_mb(), "in_use_by": server.owner_name or server.owner
                if server else "", **(server.traffic.snapshot() if server else {})}

    def status_fragment(self) -> str:
        if self.problem:
            return f"rpc worker off: {self.problem}"
        if self._server is None:
            return ""
        if self.port is None:
            return f"rpc worker DOWN ({self.last_exit or 'starting'}); restarting"
        t = self._server.traffic
        return (f"rpc worker on :{self._server.port} ({t.active} active, "
                f"{t.sessions} sessions, {t.refused} refused)")

    # ------------------------------------------------------------ discovery

    def txt(self) -> dict[str, str]:
        """The TXT keys of a node that lends memory: the link's port and the MiB free."""
        if self._server is None:
            return {}
        return {"rpc": str(self._server.port),
                "mem": str(self.free_mb() // MEM_STEP_MB * MEM_STEP_MB)}

    @staticmethod
    def free_mb() -> int:
        return available_memory() // MIB

    # ------------------------------------------------------------ internals

    def _probe_answer(self) -> dict[str, Any]:
        return {"node": self._node.name, "id": self._node.node_id,
                "serving": self.port is not None, "mem_mb": self.free_mb(),
                "threads": self.threads, "restarts": self.restarts}

    async def _supervise(self) -> None:
        backoff = RESTART_MIN_S
        while True:
            port = _free_loopback_port()
            began = time.monotonic()
            self._proc = proc = await process.spawn(
                "appliance.llm.rpc.serve", ["--port", str(port), "--threads", str(self.threads)])
            if await self._listening(proc, port):
                self.port = port
                self._node.extra_roles.add("rpc")
                self._up.set()
                log.info("rpc worker: ggml's RPC server runs on 127.0.0.1:%d (pid %d, %d "
                         "threads), behind the TLS link on %s:%s", port, proc.pid, self.threads,
                         self._host, self._server.port if self._server else "?")
            rc = await proc.wait()
            self._set_down()
            self.last_exit = f"the RPC server {process.exit_reason(rc)}"
            self.restarts += 1
            if time.monotonic() - began > STABLE_S:
                backoff = RESTART_MIN_S
            log.warning("rpc worker: %s; restarting it in %.0fs", self.last_exit, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RESTART_MAX_S)

    async def _listening(self, proc: asyncio.subprocess.Process, port: int) -> bool:
        deadline = time.monotonic() + LISTEN_WAIT_S
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                return False
            if listening(port):
                return True
            await asyncio.sleep(LISTEN_POLL_S)
        log.error("rpc worker: the RPC server is not listening after %.0fs; killing it",
                  LISTEN_WAIT_S)
        await process.stop(proc, grace_s=1.0)
        return False

    def _set_down(self) -> None:
        self.port = None
        self._node.extra_roles.discard("rpc")


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
