"""Run one untrusted command inside bubblewrap, with limits, and collect its output.

The sandbox has no network (``--unshare-all``: own net, pid, ipc, uts,
cgroup and user namespaces), cannot make user namespaces of its own
(``--disable-userns``: no nested ``unshare -Ur`` to become root again), runs
under a seccomp filter refusing what tools never need (appliance.tools.seccomp:
ptrace, mount, unshare, setns, keyctl, bpf, userfaultfd, ...), a read-only
``/usr`` and nothing else of the
host (no ``/etc``, no state directory, so no cluster key), a private,
size-capped writable ``/tmp``, rlimits on CPU time, address space, file size
and processes, an output cap, and a wall-clock timeout after which the whole
process group is SIGKILLed; bwrap's pid namespace takes every descendant
with it, even ones that left the process group.

Started as root, each run gets its own unprivileged uid (from a rotating
range with no passwd entries) so that the process limit is enforced (the
kernel does not apply RLIMIT_NPROC to root) and counts only that run: the
dying remains of a killed fork bomb cannot starve the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import resource
import secrets
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.config import SandboxConfig
from appliance.errors import ApplianceError
from appliance.tools import seccomp

log = logging.getLogger(__name__)

BWRAP = "bwrap"
SANDBOX_UID_BASE = 2_000_000
SANDBOX_UIDS = 4096
READ_CHUNK = 65536
#: Seconds allowed for reaping a killed sandbox.
REAP_TIMEOUT_S = 5.0
MAX_OPEN_FILES = 256
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1"}


class SandboxUnavailable(ApplianceError):
    """bubblewrap is missing or cannot create its namespaces here."""


#: What a shell or Python says when fork() fails with EAGAIN (RLIMIT_NPROC reached).
_FORK_FAILED = re.compile(r"Cannot fork|fork: (retry: )?Resource temporarily unavailable|"
                          r"BlockingIOError: \[Errno 11\]|can't start new thread")
#: What a program says when an allocation fails (RLIMIT_AS reached).
_NO_MEMORY = re.compile(r"\bMemoryError\b|Cannot allocate memory|memory exhausted|"
                        r"out of memory")
#: bwrap's init reports a child killed by signal N as exit status 128 + N.
_SIGNAL_EXIT_BASE = 128


@dataclass(frozen=True)
class SandboxResult:
    """What one run did."""

    exit_code: int | None
    """The command's exit status; None when it was killed by us."""
    stdout: str
    stderr: str
    timed_out: bool = False
    output_truncated: bool = False
    signal: int | None = None
    """The signal that ended it, when one did (negative return code)."""
    limits: tuple[str, ...] = ()
    """Which limits the run hit, in words, e.g. ``CPU time limit (5 s)``."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.output_truncated

    def problem(self) -> str:
        """Why this run failed, in words, naming the limit it hit ('' when it did not fail)."""
        what = self._ending()
        return f"{what}: {'; '.join(self.limits)} reached" if what and self.limits else what

    def _ending(self) -> str:
        if self.timed_out:
            return "killed: wall-clock timeout"
        if self.output_truncated:
            return "killed: output limit exceeded"
        if self.signal is not None:
            return f"killed by {_signal_name(self.signal)}"
        if self.exit_code and self.exit_code > _SIGNAL_EXIT_BASE:
            name = _signal_name(self.exit_code - _SIGNAL_EXIT_BASE)
            if name.startswith("SIG"):
                return f"killed by {name}"
        if self.exit_code:
            return f"exit status {self.exit_code}"
        return ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def limits_hit(lim: SandboxConfig, *, rc: int | None, timed_out: bool, truncated: bool,
               stderr: str) -> tuple[str, ...]:
    """The limits a run hit, in words: from how it ended and what it said on stderr."""
    hit = []
    if rc is not None and (-rc if rc < 0 else rc - _SIGNAL_EXIT_BASE) == signal.SIGXCPU:
        hit.append(f"CPU time limit ({lim.cpu_s} s)")
    if _NO_MEMORY.search(stderr):
        hit.append(f"memory limit ({lim.memory_mb} MB)")
    if _FORK_FAILED.search(stderr):
        hit.append(f"process limit ({lim.processes} processes: fork failed)")
    if truncated:
        hit.append(f"output limit ({lim.max_output_bytes} bytes)")
    if timed_out:
        hit.append(f"wall-clock limit ({lim.timeout_s:g} s)")
    return tuple(hit)


class Sandbox:
    """Runs argv in a fresh bubblewrap sandbox per call."""

    def __init__(self, limits: SandboxConfig) -> None:
        self.limits = limits
        self.bwrap = limits.bwrap or BWRAP
        first = secrets.randbelow(SANDBOX_UIDS)
        self._uids = (SANDBOX_UID_BASE + (first + i) % SANDBOX_UIDS for i in itertools.count())

    def check(self) -> None:
        """Raise SandboxUnavailable unless bwrap is installed (namespaces are tried by probe())."""
        if shutil.which(self.bwrap) is None:
            raise SandboxUnavailable(f"{self.bwrap} not found: install the Debian package "
                                     "bubblewrap")

    async def probe(self) -> None:
        """Run ``true`` in the sandbox; SandboxUnavailable with bwrap's words when that fails."""
        self.check()
        result = await self.run(["/bin/true"])
        if result.exit_code != 0:
            raise SandboxUnavailable(f"bubblewrap cannot create its sandbox here: "
                                     f"{result.stderr.strip() or result.problem()} "
                                     "(see docs/tools.md: run the tool server as its own unit)")

    async def run(self, argv: list[str], stdin: bytes = b"") -> SandboxResult:
        """Run ``argv`` inside the sandbox; never raises for what the command does."""
        uid = next(self._uids) if os.geteuid() == 0 else None
        filter_fd = _filter_fd()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._bwrap_argv(argv, filter_fd), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True, preexec_fn=self._set_limits, env=dict(_ENV),
                user=uid, group=uid, extra_groups=[] if uid is not None else None,
                pass_fds=(filter_fd,) if filter_fd is not None else ())
        finally:
            if filter_fd is not None:
                os.close(filter_fd)
        cap = self.limits.max_output_bytes
        out, err = bytearray(), bytearray()
        overflow = asyncio.Event()

        async def pump(stream: asyncio.StreamReader | None, buf: bytearray) -> None:
            assert stream is not None
            # Read to the end even past the cap, so the pipes close with the process.
            while chunk := await stream.read(READ_CHUNK):
                room = cap - len(out) - len(err)
                buf.extend(chunk[:max(room, 0)])
                if len(chunk) > room:
                    overflow.set()

        async def feed() -> None:
            assert proc.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                if stdin:
                    proc.stdin.write(stdin)
                    await proc.stdin.drain()
                proc.stdin.close()

        work: asyncio.Future[Any] = asyncio.gather(
            feed(), pump(proc.stdout, out), pump(proc.stderr, err), proc.wait())
        overflowed: asyncio.Future[Any] = asyncio.ensure_future(overflow.wait())
        timed_out = truncated = False
        try:
            done, _ = await asyncio.wait({work, overflowed}, timeout=self.limits.timeout_s,
                                         return_when=asyncio.FIRST_COMPLETED)
            if work not in done:
                truncated = overflowed in done
                timed_out = not truncated
                _kill_group(proc.pid)
        finally:
            overflowed.cancel()
            if not work.done():
                _kill_group(proc.pid)
                # The pid namespace dies with bwrap, so every pipe reaches EOF promptly.
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(work, REAP_TIMEOUT_S)
        rc = proc.returncode
        killed = timed_out or truncated
        stderr = err.decode(errors="replace")
        return SandboxResult(
            exit_code=None if killed or rc is None or rc < 0 else rc,
            stdout=out.decode(errors="replace"), stderr=stderr,
            timed_out=timed_out, output_truncated=truncated,
            signal=-rc if rc is not None and rc < 0 and not killed else None,
            limits=limits_hit(self.limits, rc=None if killed else rc, timed_out=timed_out,
                              truncated=truncated, stderr=stderr))

    def _bwrap_argv(self, argv: list[str], filter_fd: int | None = None) -> list[str]:
        lim = self.limits
        args = [self.bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
                "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--hostname", "sandbox", "--clearenv"]
        if filter_fd is not None:
            args += ["--seccomp", str(filter_fd)]
        for key, value in _ENV.items():
            args += ["--setenv", key, value]
        args += ["--ro-bind", "/usr", "/usr"]
        for top in ("bin", "lib", "lib64", "sbin", "lib32"):
            host = Path("/") / top
            if host.is_symlink():
                args += ["--symlink", os.readlink(host), f"/{top}"]
            elif host.is_dir():
                args += ["--ro-bind", str(host), f"/{top}"]
        for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
            if os.path.exists(etc):
                args += ["--ro-bind", etc, etc]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--size", str(lim.tmp_mb * 1024 * 1024), "--tmpfs", "/tmp",
                 "--remount-ro", "/", "--chdir", "/tmp", "--", *argv]
        return args

    def _set_limits(self) -> None:
        # Runs in the child between fork and exec: only async-signal-safe-ish calls.
        lim = self.limits
        mem = lim.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (lim.cpu_s, lim.cpu_s + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_NPROC, (lim.processes, lim.processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim.tmp_mb * 1024 * 1024,) * 2)
        resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _filter_fd() -> int | None:
    """The seccomp program for bwrap, or None (logged once) on an architecture without one."""
    global _NO_FILTER_LOGGED
    try:
        return seccomp.program_fd()
    except seccomp.SeccompUnavailable as exc:
        if not _NO_FILTER_LOGGED:
            log.warning("tool sandbox without a seccomp filter: %s", exc)
            _NO_FILTER_LOGGED = True
        return None


_NO_FILTER_LOGGED = False


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)

