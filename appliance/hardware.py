"""What this box is: usable cores, memory, NVIDIA GPUs, architecture, Python.

Detection reads ``/proc`` and ``/sys`` under a root directory so tests can
hand it a fake tree. Cores honour the affinity mask and the cgroup CPU quota;
memory honours the cgroup memory limit (v2 and v1).
"""

from __future__ import annotations

import functools
import math
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

GIB = 1024**3
NVIDIA_SMI_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Gpu:
    """One NVIDIA GPU."""

    name: str
    memory_bytes: int

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB


@dataclass(frozen=True)
class HardwareProfile:
    """What detection found."""

    cores: int
    """Logical CPUs this process may use (affinity and cgroup quota applied)."""
    physical_cores: int
    """Physical cores among them (at least 1)."""
    host_cpus: int
    """Logical CPUs the machine has."""
    memory_bytes: int
    """Memory this process may use (cgroup limit applied)."""
    host_memory_bytes: int
    """Memory the machine has."""
    arch: str
    python: str
    gpus: tuple[Gpu, ...] = field(default_factory=tuple)
    cpu_limit: str = ""
    """Why cores is lower than host_cpus, if it is."""
    memory_limit: str = ""
    """Why memory is lower than the machine's, if it is."""

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / GIB

    @property
    def gpu_memory_gib(self) -> float:
        return max((g.memory_gib for g in self.gpus), default=0.0)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["memory_gib"] = round(self.memory_gib, 1)
        d["gpus"] = [{"name": g.name, "memory_gib": round(g.memory_gib, 1)} for g in self.gpus]
        return d


@functools.lru_cache(maxsize=1)
def usable_physical_cores() -> int:
    """Physical cores this process may use (affinity mask and cgroup quota applied): what a
    ``threads: 0`` setting means. Detected once per process."""
    try:
        return detect(nvidia_smi=lambda: None).physical_cores
    except Exception:  # /proc or /sys unreadable: half the logical CPUs
        return max(1, (os.cpu_count() or 2) // 2)


def detect(
    root: Path | str = "/",
    *,
    machine: str | None = None,
    affinity: int | None = None,
    nvidia_smi: Callable[[], str | None] | None = None,
) -> HardwareProfile:
    """Detect the hardware under ``root`` (a fake tree in tests)."""
    root = Path(root)
    real = root == Path("/")
    host_cpus = _host_cpus(root)
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if real else host_cpus
    cores = min(host_cpus, affinity)
    cpu_limit = f"affinity mask allows {affinity} of {host_cpus}" if affinity < host_cpus else ""
    cgroup_dir = _cgroup_dir(root)
    quota = _cgroup_cpu_quota(root, cgroup_dir)
    if quota is not None and math.ceil(quota) < cores:
        cores = max(1, math.ceil(quota))
        cpu_limit = f"cgroup CPU quota {quota:g} CPUs"
    physical = min(cores, _physical_cores(root, host_cpus))

    host_mem = _meminfo_total(root)
    mem = host_mem
    mem_limit = ""
    limit = _cgroup_memory_limit(root, cgroup_dir)
    if limit is not None and limit < host_mem:
        mem = limit
        mem_limit = f"cgroup memory limit {limit / GIB:.1f} GiB"

    if nvidia_smi is None:
        nvidia_smi = _run_nvidia_smi if real else (lambda: None)
    gpus = _parse_nvidia_smi(nvidia_smi())
    return HardwareProfile(
        cores=cores,
        physical_cores=max(1, physical),
        host_cpus=host_cpus,
        memory_bytes=mem,
        host_memory_bytes=host_mem,
        arch=machine or platform.machine(),
        python=platform.python_version() if real or machine is None else sys.version.split()[0],
        gpus=tuple(gpus),
        cpu_limit=cpu_limit,
        memory_limit=mem_limit,
    )


def available_memory(root: Path | str = "/") -> int:
    """Bytes this process could still take: the kernel's MemAvailable, and no more than
    what is left under the tightest cgroup memory limit (v2) on the way up.

    Under the unit's ProcSubset=pid /proc/meminfo is hidden: then the free pages
    (sysconf), which leave out the page cache the kernel would give back.
    """
    root = Path(root)
    avail = _meminfo_field(root, "MemAvailable:")
    if avail is None:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    v2, _v1 = _cgroup_dir(root)
    if v2 is not None:
        for d in _walk_up(v2, root / "sys/fs/cgroup"):
            limit = (_read(d / "memory.max") or "").strip()
            used = (_read(d / "memory.current") or "").strip()
            if limit.isdigit() and used.isdigit():
                avail = min(avail, max(0, int(limit) - int(used)))
    return avail


# ---------------------------------------------------------------- CPU


def _host_cpus(root: Path) -> int:
    online = _read(root / "sys/devices/system/cpu/online")
    if online:
        n = _count_cpu_list(online)
        if n:
            return n
    cpuinfo = _read(root / "proc/cpuinfo") or ""
    n = sum(1 for line in cpuinfo.splitlines() if line.startswith("processor"))
    return max(1, n or (os.cpu_count() or 1))


def _count_cpu_list(text: str) -> int:
    count = 0
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            count += int(hi) - int(lo) + 1
        else:
            count += 1
    return count


def _physical_cores(root: Path, host_cpus: int) -> int:
    cpuinfo = _read(root / "proc/cpuinfo") or ""
    pairs: set[tuple[str, str]] = set()
    phys = core = None
    for line in [*cpuinfo.splitlines(), ""]:
        if not line.strip():
            if core is not None:
                pairs.add((phys or "0", core))
            phys = core = None
            continue
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            core = value.strip()
    if pairs:
        return len(pairs)
    siblings: set[str] = set()
    for topo in (root / "sys/devices/system/cpu").glob("cpu[0-9]*/topology/thread_siblings_list"):
        text = _read(topo)
        if text:
            siblings.add(text.strip())
    return len(siblings) or host_cpus


# ---------------------------------------------------------------- CPU features

# The features the inference libraries pick their kernels by (onnxruntime's MLAS,
# CTranslate2, llama.cpp), as /proc/cpuinfo names them on x86 ("flags") and ARM
# ("Features"). Reported when present; the full list is kept too.
NOTABLE_CPU_FEATURES = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16",
    "asimd", "asimdhp", "fphp", "asimddp", "i8mm", "bf16", "sve", "sve2",
)
MAX_CPUINFO_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class CpuFeatures:
    """What the CPU can do, as this process can read it: /proc/cpuinfo and the sysfs topology,
    where onnxruntime (its cpuinfo library) and CTranslate2 look before choosing kernels."""

    arch: str
    model: str = ""
    flags: tuple[str, ...] = ()
    """Every flag /proc/cpuinfo lists for the first processor."""
    topology_cpus: int = 0
    """CPUs /sys/devices/system/cpu/possible names (0: unreadable)."""
    problem: str = ""
    """Why the features could not be read ("" when they were)."""

    @property
    def notable(self) -> tuple[str, ...]:
        return tuple(f for f in NOTABLE_CPU_FEATURES if f in self.flags)

    def summary(self) -> str:
        """One line for a log or the doctor."""
        if self.problem:
            return f"{self.arch}: {self.problem}"
        named = " ".join(self.notable) or "no SIMD features listed"
        return (f"{self.arch} {self.model or 'CPU'}: {named} ({len(self.flags)} flags in "
                f"/proc/cpuinfo, {self.topology_cpus} CPUs in the sysfs topology)")

    def to_dict(self) -> dict[str, object]:
        return {"arch": self.arch, "model": self.model, "notable": list(self.notable),
                "flags": len(self.flags), "topology_cpus": self.topology_cpus,
                "problem": self.problem, "summary": self.summary()}


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """(model name, flags) of the first processor in /proc/cpuinfo's text."""
    model = ""
    flags: tuple[str, ...] = ()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and not model:
            model = value.strip()[:100]
        elif key in ("flags", "Features") and not flags:
            flags = tuple(value.split())
    return model, flags


def cpu_features(root: Path | str = "/", *, machine: str | None = None) -> CpuFeatures:
    """Read the CPU features under ``root`` (a fake tree in tests)."""
    root = Path(root)
    arch = machine or platform.machine()
    possible = _read(root / "sys/devices/system/cpu/possible")
    topology = _count_cpu_list(possible) if possible else 0
    try:
        with open(root / "proc/cpuinfo", "rb") as fh:
            text = fh.read(MAX_CPUINFO_BYTES).decode(errors="replace")
    except OSError as exc:
        return CpuFeatures(arch, topology_cpus=topology, problem=(
            f"cannot read /proc/cpuinfo ({exc.strerror or exc}): the inference libraries "
            "cannot detect the CPU and fall back to generic kernels"))
    model, flags = parse_cpuinfo(text)
    if not flags:
        return CpuFeatures(arch, model, topology_cpus=topology,
                           problem="/proc/cpuinfo lists no CPU features")
    if not topology:
        return CpuFeatures(arch, model, flags, problem=(
            "cannot read /sys/devices/system/cpu/possible: the inference libraries cannot "
            "count the CPUs"))
    return CpuFeatures(arch, model, flags, topology)


# ---------------------------------------------------------------- cgroups


def _cgroup_dir(root: Path) -> tuple[Path | None, Path | None]:
    """(v2 dir, v1 root) for this process's cgroup, walking from the mount."""
    text = _read(root / "proc/self/cgroup") or ""
    base = root / "sys/fs/cgroup"
    v2 = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[0] == "0" and parts[1] == "":
            v2 = base / parts[2].lstrip("/")
    if v2 is not None and (base / "cgroup.controllers").exists():
        return v2, None
    return None, base


def _walk_up(leaf: Path, stop: Path) -> list[Path]:
    out = []
    cur = leaf
    while True:
        out.append(cur)
        if cur == stop or stop not in cur.parents:
            break
        cur = cur.parent
    return out


def _cgroup_cpu_quota(root: Path, dirs: tuple[Path | None, Path | None]) -> float | None:
    v2, v1 = dirs
    best: float | None = None
    if v2 is not None:
        for d in _walk_up(v2, root / "sys/fs/cgroup"):
            text = _read(d / "cpu.max")
            if not text:
                continue
            parts = text.split()
            if len(parts) == 2 and parts[0] != "max":
                value = int(parts[0]) / int(parts[1])
                best = value if best is None else min(best, value)
        return best
    if v1 is not None:
        for sub in ("cpu,cpuacct", "cpu"):
            q = _read(v1 / sub / "cpu.cfs_quota_us")
            p = _read(v1 / sub / "cpu.cfs_period_us")
            if q and p and int(q) > 0:
                return int(q) / int(p)
    return None


def _cgroup_memory_limit(root: Path, dirs: tuple[Path | None, Path | None]) -> int | None:
    v2, v1 = dirs
    best: int | None = None
    if v2 is not None:
        for d in _walk_up(v2, root / "sys/fs/cgroup"):
            text = (_read(d / "memory.max") or "").strip()
            if text and text != "max":
                best = int(text) if best is None else min(best, int(text))
        return best
    if v1 is not None:
        text = (_read(v1 / "memory/memory.limit_in_bytes") or "").strip()
        # v1 reports "no limit" as a huge page-aligned number.
        if text and int(text) < (1 << 60):
            return int(text)
    return None


# ---------------------------------------------------------------- memory and GPU


def _meminfo_field(root: Path, name: str) -> int | None:
    for line in (_read(root / "proc/meminfo") or "").splitlines():
        if line.startswith(name):
            return int(line.split()[1]) * 1024
    return None


def _meminfo_total(root: Path) -> int:
    for line in (_read(root / "proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _run_nvidia_smi() -> str | None:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        proc = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _parse_nvidia_smi(text: str | None) -> list[Gpu]:
    """Parse ``name, memory MiB`` lines from nvidia-smi's CSV output."""
    gpus = []
    for line in (text or "").splitlines():
        name, _, mem = line.rpartition(",")
        try:
            gpus.append(Gpu(name=name.strip()[:100], memory_bytes=int(float(mem)) * 1024 * 1024))
        except ValueError:
            continue
    return gpus


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None
