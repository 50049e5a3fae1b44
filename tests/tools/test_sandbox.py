"""Escape attempts against the sandboxed shell and python tools fail, as tool errors."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
from pathlib import Path

import pytest

from appliance.config import SandboxConfig
from appliance.security.keys import create_key_file
from appliance.tools.base import invoke
from appliance.tools.python_runner import PythonRunner
from appliance.tools.sandbox import Sandbox
from appliance.tools.shell import Shell

# The wall clock is generous (bwrap + python start slowly on a loaded box) so that each
# other limit is seen to act on its own; SHORT is for the cases where the wall clock is the point.
LIMITS = SandboxConfig(timeout_s=60.0, cpu_s=2, memory_mb=256, processes=16,
                       max_output_bytes=4096, tmp_mb=4)
SHORT = dataclasses.replace(LIMITS, timeout_s=3.0)
CALL_TIMEOUT_S = 120.0
WALL = "wall-clock"


@pytest.fixture
def shell() -> Shell:
    return Shell(Sandbox(LIMITS))


@pytest.fixture
def python() -> PythonRunner:
    return PythonRunner(Sandbox(LIMITS))


@pytest.fixture
def short_shell() -> Shell:
    return Shell(Sandbox(SHORT))


def survivors(marker: str) -> list[int]:
    """Pids whose command line contains ``marker``: what a kill left behind."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
            except OSError:
                pass
    return found


async def test_ordinary_commands_work_and_tmp_is_writable(shell: Shell,
                                                          python: PythonRunner) -> None:
    obs = await invoke(shell, {"command": "echo hello > /tmp/f && cat /tmp/f && echo $((6*7))"},
                       CALL_TIMEOUT_S)
    assert obs == {"ok": True, "result": {"exit_code": 0, "stdout": "hello\n42\n", "stderr": ""}}
    obs = await invoke(python, {"code": "import math\nprint(math.factorial(10))"}, CALL_TIMEOUT_S)
    assert obs["ok"] and obs["result"]["stdout"] == "3628800\n"
    failed = await invoke(shell, {"command": "echo oops >&2; exit 3"}, CALL_TIMEOUT_S)
    assert failed["ok"] is False
    assert "exit status 3" in failed["error"] and "oops" in failed["error"]


async def test_no_network_not_even_the_hosts_loopback(python: PythonRunner) -> None:
    connections = 0

    async def on_connect(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        w.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = ("import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "print('connected')\n")
    obs = await invoke(python, {"code": code}, CALL_TIMEOUT_S)
    server.close()
    await server.wait_closed()
    assert obs["ok"] is False
    assert "ConnectionRefusedError" in obs["error"] or "unreachable" in obs["error"]
    assert connections == 0
    ifaces = await invoke(python, {"code": "import socket; print(socket.if_nameindex())"},
                          CALL_TIMEOUT_S)
    assert ifaces["result"]["stdout"].strip() == "[(1, 'lo')]"  # nothing but its own loopback


async def test_writing_outside_tmp_fails(shell: Shell, tmp_path: Path) -> None:
    # The host's /tmp is not the sandbox's /tmp, and the repo is not there at all.
    targets = [tmp_path / "escaped", Path.cwd() / f"escaped-{secrets.token_hex(4)}"]
    for path in ("/usr/pwned", "/pwned", "/proc/sys/kernel/hostname", *map(str, targets)):
        obs = await invoke(shell, {"command": f"echo x > {path}"}, CALL_TIMEOUT_S)
        assert obs["ok"] is False, path
        assert any(w in obs["error"] for w in ("Read-only file system", "Directory nonexistent",
                                               "No such file", "Permission denied")), obs
    assert not any(t.exists() for t in targets) and not Path("/usr/pwned").exists()


async def test_the_cluster_key_cannot_be_read(shell: Shell, tmp_path: Path) -> None:
    key_file = tmp_path / "cluster.key"
    key = create_key_file(key_file)
    for path in (str(key_file), "/etc/hybrid-agent/cluster.key", "/var/lib/hybrid-agent"):
        obs = await invoke(shell, {"command": f"cat {path} | od -An -tx1 | head -c 200"},
                           CALL_TIMEOUT_S)
        assert key.hex()[:16] not in str(obs)
    obs = await invoke(shell, {"command": f"cat {key_file}"}, CALL_TIMEOUT_S)
    assert obs["ok"] is False and "No such file" in obs["error"]


async def test_a_fork_bomb_is_contained(short_shell: Shell) -> None:
    marker = "bomb" + secrets.token_hex(4)
    # The shell then waits in a builtin loop: a "sleep" would need a fork, which fails once
    # the bomb holds the process limit and ends the shell before the wall clock (seen on a
    # loaded box), leaving the test to a race.
    obs = await invoke(short_shell, {"command": f"{marker}() {{ {marker} | {marker} & }}; "
                                                f"{marker}; while :; do :; done"},
                       CALL_TIMEOUT_S)
    assert obs["ok"] is False and "killed" in obs["error"]
    # It grew into the process limit (forks failed) before the wall clock took the tree.
    assert f"process limit ({SHORT.processes} processes: fork failed)" in obs["error"], obs
    assert survivors(marker) == []


async def test_the_process_limit_stops_forks_before_any_timeout(shell: Shell,
                                                                python: PythonRunner) -> None:
    seconds = f"6{secrets.randbelow(10**6):06d}.5"  # a sleep nobody else runs: the marker
    obs = await invoke(shell, {"command": f"for i in $(seq 100); do sleep {seconds} & done; "
                                          "echo spawned"}, CALL_TIMEOUT_S)
    assert obs["ok"] is False, obs
    assert "exit status" in obs["error"] and "Cannot fork" in obs["error"]
    assert f"process limit ({LIMITS.processes} processes: fork failed) reached" in obs["error"]
    assert WALL not in obs["error"] and "spawned" not in obs["error"]
    assert survivors(seconds) == []  # the sleeps died with the sandbox's pid namespace
    code = ("import os, time\nfor _ in range(100):\n    if os.fork() == 0:\n"
            "        time.sleep(600)\n")
    obs = await invoke(python, {"code": code}, CALL_TIMEOUT_S)
    assert obs["ok"] is False and "BlockingIOError" in obs["error"], obs
    assert "process limit" in obs["error"] and WALL not in obs["error"]


async def test_an_endless_loop_hits_the_cpu_limit(python: PythonRunner, shell: Shell) -> None:
    # The wall clock (60 s) is far away: only RLIMIT_CPU (2 s) can end these.
    for tool, args in ((python, {"code": "while True:\n    pass\n"}),
                       (shell, {"command": "while :; do :; done"})):
        obs = await invoke(tool, args, CALL_TIMEOUT_S)
        assert obs["ok"] is False
        assert obs["error"].startswith(
            f"killed by SIGXCPU: CPU time limit ({LIMITS.cpu_s} s) reached"), obs
        assert WALL not in obs["error"]


async def test_a_sleeper_hits_the_wall_clock_limit(short_shell: Shell) -> None:
    marker = "sleep" + secrets.token_hex(4)
    # Not burning CPU, and hiding from the process group: the wall clock still ends it.
    obs = await invoke(short_shell,
                       {"command": f"setsid sh -c 'sleep 1000 # {marker}' & sleep 1000"},
                       CALL_TIMEOUT_S)
    assert obs["ok"] is False
    assert obs["error"] == (f"killed: wall-clock timeout: wall-clock limit ({SHORT.timeout_s:g} s) "
                            "reached")
    assert survivors(marker) == []


async def test_an_output_flood_is_cut_off(shell: Shell, python: PythonRunner) -> None:
    obs = await invoke(shell, {"command": "yes flood"}, CALL_TIMEOUT_S)
    assert obs["ok"] is False and "output limit exceeded" in obs["error"]
    assert f"output limit ({LIMITS.max_output_bytes} bytes)" in obs["error"]
    assert WALL not in obs["error"]
    assert len(obs["error"]) < 2 * LIMITS.max_output_bytes
    obs = await invoke(python, {"code": "import sys\nsys.stderr.write('e' * 10**7)"},
                       CALL_TIMEOUT_S)
    assert obs["ok"] is False and "output limit exceeded" in obs["error"]


async def test_memory_and_tmp_size_are_limited(python: PythonRunner, shell: Shell) -> None:
    obs = await invoke(python, {"code": "x = bytearray(1024 * 1024 * 1024)"}, CALL_TIMEOUT_S)
    assert obs["ok"] is False and "MemoryError" in obs["error"]
    assert f"memory limit ({LIMITS.memory_mb} MB) reached" in obs["error"]
    assert WALL not in obs["error"]
    obs = await invoke(shell, {"command": "head -c 20000000 /dev/zero > /tmp/big"},
                       CALL_TIMEOUT_S)
    assert obs["ok"] is False


# ---------------------------------------------------------------- issue 15, item 8

#: Each call a tool never needs, made from Python inside the sandbox: name -> errno (0: it
#: worked). The arguments are harmless: nothing below could do damage even if allowed.
SYSCALL_PROBE = r"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
nr = json.loads(os.environ.get("NRS", "{}")) or %s
def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(nr[name], *[ctypes.c_long(a) for a in args])
    return 0 if r >= 0 else ctypes.get_errno()
out = {
    "ptrace": call("ptrace", 0, 0, 0, 0),                 # PTRACE_TRACEME
    "keyctl": call("keyctl", 0, -3, 0),                   # GET_KEYRING_ID of the session
    "add_key": call("add_key", 0, 0, 0, 0, -3),
    "bpf": call("bpf", 0, 0, 0),
    "userfaultfd": call("userfaultfd", 0),
    "perf_event_open": call("perf_event_open", 0, 0, -1, -1, 0),
    "unshare": call("unshare", 0x40000000),               # CLONE_NEWNET
    "setns": call("setns", 0, 0),
    "mount": call("mount", 0, 0, 0, 0, 0),
    "io_uring_setup": call("io_uring_setup", 1, 0),
    "clone_newuser": call("clone", 0x10000000 | 17, 0, 0, 0, 0),
    "clone3": call("clone3", 0, 0),
    "x32": call("getpid") if nr.get("x32_getpid") is None else call("x32_getpid"),
}
print(json.dumps(out))
"""


def _probe_numbers() -> dict[str, int]:
    from appliance.tools import seccomp

    arch = seccomp.native_arch()
    names = ("ptrace", "keyctl", "add_key", "bpf", "userfaultfd", "perf_event_open", "unshare",
             "setns", "mount", "io_uring_setup", "clone", "clone3")
    nrs = {n: arch.numbers[n] for n in names}
    nrs["getpid"] = {"x86_64": 39, "aarch64": 172}[arch.name]
    if arch.x32_bit:
        nrs["x32_getpid"] = seccomp.X32_SYSCALL_BIT | 39
    return nrs


async def test_the_seccomp_filter_refuses_what_tools_never_need() -> None:
    """Red team: no seccomp filter at all. Each call below is refused (EPERM; clone3 and a
    foreign ABI ENOSYS, so the C library falls back to clone, whose flags are checked)."""
    import errno
    import json

    code = SYSCALL_PROBE % json.dumps(_probe_numbers())
    result = await Sandbox(LIMITS).run(["/usr/bin/python3", "-c", code])
    assert result.ok, result
    got = json.loads(result.stdout)
    expected = {name: errno.EPERM for name in got}
    expected["clone3"] = errno.ENOSYS
    if "x32_getpid" in _probe_numbers():
        expected["x32"] = errno.ENOSYS
    else:
        expected["x32"] = 0
    assert got == expected


async def test_without_the_filter_the_same_calls_get_through(tmp_path: Path) -> None:
    """The control: plain bwrap (no --seccomp) lets ptrace and keyctl through, so the test
    above sees the filter, not some other limit."""
    import json

    sandbox = Sandbox(LIMITS)
    argv = sandbox._bwrap_argv(["/usr/bin/python3", "-c",
                                SYSCALL_PROBE % json.dumps(_probe_numbers())])
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), CALL_TIMEOUT_S)
    got = json.loads(out)
    assert got["ptrace"] == 0 and got["keyctl"] == 0, (got, err)


async def test_a_nested_user_namespace_cannot_be_made(shell: Shell) -> None:
    """Red team: `unshare -Ur` inside the shell tool gave uid 0, then a new network namespace
    and a tmpfs mount succeeded."""
    obs = await invoke(shell, {"command": "unshare -Ur sh -c 'id -u; unshare -n true && "
                                          "mount -t tmpfs none /tmp && echo escaped'"},
                       CALL_TIMEOUT_S)
    assert obs["ok"] is False, obs
    assert "escaped" not in json_dumps(obs)
    assert "unshare failed" in obs["error"], obs


def json_dumps(value: object) -> str:
    import json

    return json.dumps(value)


def test_the_filters_syscall_numbers_match_libseccomp() -> None:
    """The numbers are written out per architecture; libseccomp's tables (the library systemd
    uses) must agree for every call the filter names."""
    import ctypes
    import ctypes.util

    from appliance.tools import seccomp

    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
    resolve = lib.seccomp_syscall_resolve_name_arch
    resolve.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    resolve.restype = ctypes.c_int
    for arch in seccomp.ARCHES.values():
        wrong = {name: (nr, resolve(arch.audit, name.encode()))
                 for name, nr in arch.numbers.items()
                 if resolve(arch.audit, name.encode()) != nr}
        assert not wrong, (arch.name, wrong)
        assert set(seccomp.DENIED) <= set(arch.numbers)
