"""The RPC children: started with this interpreter, tied to the daemon's life, stopped firmly.

Both children (``serve`` on a worker, ``host`` on a core) run llama.cpp code
that can abort or hang in native code, so the daemon only ever talks to them
through sockets and pipes and stops them with SIGTERM, then SIGKILL. A child
asks the kernel to kill it when the daemon dies (``die_with_parent``), so a
``kill -9`` of the daemon leaves no orphan holding a port or gigabytes of weights.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from typing import Any

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 10.0


def die_with_parent(parent_pid: int) -> None:
    """In a child: be killed when ``parent_pid`` dies (and exit now if it already has)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


async def spawn(module: str, args: list[str], *, stdin: Any = None,
                stdout: Any = None) -> asyncio.subprocess.Process:
    """``python -m module --parent <our pid> args...``; its stderr goes to ours (the journal)."""
    argv = [sys.executable, "-m", module, "--parent", str(os.getpid()), *args]
    # systemd's sockets are the daemon's: a child must not speak for it (NotifyAccess=main).
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    # llama.cpp's RDMA transport would bypass the encrypted link; our builds leave it out,
    # and this keeps it off even in a build that has it.
    env["GGML_RPC_NO_RDMA"] = "1"
    return await asyncio.create_subprocess_exec(*argv, stdin=stdin, stdout=stdout, env=env,
                                                start_new_session=False)


async def stop(proc: asyncio.subprocess.Process | None, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; returns once the child is reaped."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def exit_reason(returncode: int | None) -> str:
    """A child's end in words ("exited with status 1", "killed by SIGABRT")."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with status {returncode}"
