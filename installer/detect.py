"""What the box looks like before the install: hardware, systemd, Python, disk, port, network.

Every probe is a small function taking what it needs, so tests call
:func:`facts_from` with hand-made values instead of the real machine's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from appliance import hardware, tiers
from installer import SERVICE, Paths, configfile

PACKAGE = "hybrid-agent"
LLM_PACKAGE = "hybrid-agent-llm"

SYSTEMCTL_TIMEOUT_S = 15.0
NETWORK_TIMEOUT_S = 5.0
DEFAULT_INDEX = "https://pypi.org/simple"


@dataclass(frozen=True)
class Facts:
    """Everything the planner needs to know about the box."""

    paths: Paths
    """Where the install goes (what the other facts were gathered for)."""
    hardware: hardware.HardwareProfile
    detected: tiers.TierChoice
    python: tuple[int, int, int]
    systemd_state: str
    """What `systemctl is-system-running` printed; empty when there is no systemd."""
    disk_free: dict[str, int]
    """Free bytes under each directory the install writes to."""
    port_busy: dict[int, bool] = field(default_factory=dict)
    """Whether each candidate port is taken by something other than our service."""
    service_active: bool = False
    network: str = ""
    """Empty when the package index answers, else why not."""
    record: dict[str, object] = field(default_factory=dict)
    """What the last install recorded (tier, port, hashes); empty on a fresh box."""
    existing_port: int | None = None
    """The http.port of an existing config.yaml."""
    groups: frozenset[str] = frozenset()
    is_root: bool = True
    bwrap: bool = True
    """Whether bubblewrap is installed (the tools unit runs shell and python in it)."""
    apt_get: bool = False
    """Whether apt-get is there to install bubblewrap with."""
    debs: dict[str, Path] = field(default_factory=dict)
    """The newest .deb of each of our packages for this box's architecture, by package name
    (hybrid-agent, hybrid-agent-llm), from dist/ or --debs DIR; empty where there is none."""
    dpkg_version: str = ""
    """The version of hybrid-agent dpkg has installed ("" when not installed as a package)."""


def detect(paths: Paths, ports: list[int], *, need_network: bool,
           deb_dirs: tuple[Path, ...] = ()) -> Facts:
    """Probe the real machine; ``deb_dirs`` are searched for packages of this architecture."""
    hw = hardware.detect()
    active = service_active()
    return Facts(
        paths=paths,
        hardware=hw,
        detected=tiers.choose_tier(hw),
        python=(sys.version_info.major, sys.version_info.minor, sys.version_info.micro),
        systemd_state=systemd_state(),
        disk_free={str(p): disk_free(p) for p in (paths.opt, paths.state)},
        port_busy={p: port_busy(p) and not active for p in ports},
        service_active=active,
        network=network_problem() if need_network else "",
        record=read_record(paths.record),
        existing_port=configfile.port(paths.command, paths.config),
        groups=read_groups(paths.group_file),
        is_root=os.geteuid() == 0,
        bwrap=shutil.which("bwrap") is not None,
        apt_get=shutil.which("apt-get") is not None,
        debs=find_debs(deb_dirs, dpkg_architecture()),
        dpkg_version=dpkg_version(PACKAGE),
    )


def dpkg_architecture() -> str:
    """dpkg's name for this box's architecture (amd64, arm64, armhf), "" without dpkg."""
    try:
        proc = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              timeout=SYSTEMCTL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip()


def dpkg_version(package: str) -> str:
    """The installed version of ``package`` ("" when dpkg has not installed it)."""
    status, version = _dpkg_status(package)
    return version if status.startswith("ii") else ""


def dpkg_has_config(package: str) -> bool:
    """Whether ``package`` was removed but not purged (dpkg status rc)."""
    return _dpkg_status(package)[0].startswith("rc")


def _dpkg_status(package: str) -> tuple[str, str]:
    """(dpkg's status abbreviation, version) of ``package``; ("", "") when unknown."""
    try:
        proc = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}",
                               package], capture_output=True, text=True,
                              timeout=SYSTEMCTL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "", ""
    if proc.returncode != 0:
        return "", ""
    status, _, version = proc.stdout.partition("|")
    return status, version.strip()


def find_debs(dirs: tuple[Path, ...], arch: str) -> dict[str, Path]:
    """The newest ``PACKAGE_VERSION_ARCH.deb`` of each of our packages in ``dirs``."""
    best: dict[str, tuple[str, Path]] = {}
    if not arch:
        return {}
    for d in dirs:
        for deb in sorted(d.glob(f"*_{arch}.deb")) if d.is_dir() else ():
            name, _, rest = deb.name.partition("_")
            version = rest.rsplit("_", 1)[0]
            if name not in (PACKAGE, LLM_PACKAGE):
                continue
            if name not in best or _version_newer(version, best[name][0]):
                best[name] = (version, deb)
    return {name: deb for name, (_version, deb) in best.items()}


def _version_newer(a: str, b: str) -> bool:
    proc = subprocess.run(["dpkg", "--compare-versions", a, "gt", b], capture_output=True,
                          timeout=SYSTEMCTL_TIMEOUT_S, check=False)
    return proc.returncode == 0


def systemd_state() -> str:
    """`systemctl is-system-running`'s answer ("offline" where systemd is not PID 1), or ""
    when there is no systemctl."""
    if not shutil.which("systemctl"):
        return ""
    try:
        proc = subprocess.run(["systemctl", "is-system-running"], capture_output=True,
                              text=True, timeout=SYSTEMCTL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip()


def service_active() -> bool:
    if not shutil.which("systemctl"):
        return False
    try:
        proc = subprocess.run(["systemctl", "is-active", "--quiet", SERVICE],
                              capture_output=True, timeout=SYSTEMCTL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem that will hold ``path`` (its nearest existing parent)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    st = os.statvfs(p)
    return st.f_bavail * st.f_frsize


def port_busy(port: int) -> bool:
    """Whether something listens on ``port`` (any address, IPv4)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the daemon binds (reuse_address): connections in TIME_WAIT - the last
        # /health checks of a service that since failed - do not make the port busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def network_problem(index_url: str | None = None) -> str:
    """Empty when the package index's host accepts a TCP connection, else the reason."""
    url = index_url or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    parsed = urlparse(url)
    host = parsed.hostname or "pypi.org"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=NETWORK_TIMEOUT_S):
            return ""
    except OSError as exc:
        return f"cannot reach {host}:{port} ({exc.strerror or exc})"


def read_record(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_groups(path: Path) -> frozenset[str]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return frozenset()
    return frozenset(line.split(":", 1)[0] for line in lines if line and ":" in line)
