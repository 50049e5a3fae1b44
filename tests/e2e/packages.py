"""The Debian packages under test: built once per source by packaging/build_deb.py (`make deb`).

The build itself is cached under the test cache keyed by the source, so the
first test that needs packages of an architecture pays for the build (minutes;
arm64 under emulation) and every later one, in this run or the next with the
same tree, reuses them.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import ModuleType

from tests.e2e.container import Container

REPO = Path(__file__).resolve().parents[2]
BUILD_DEB = REPO / "packaging" / "build_deb.py"
DPKG_DEB_TIMEOUT_S = 900


def build_deb() -> ModuleType:
    """packaging/build_deb.py as a module (packaging/ is no Python package: a directory of
    that name would shadow PyPI's ``packaging``)."""
    spec = importlib.util.spec_from_file_location("build_deb", BUILD_DEB)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def built(arch: str, *, llm: bool) -> Path:
    """The directory with the built .deb files of ``arch`` (and lintian.txt); with
    HYBRID_AGENT_TEST_DEBS_<ARCH>=DIR, the packages in DIR instead (a release to check)."""
    given = os.environ.get(f"HYBRID_AGENT_TEST_DEBS_{arch.upper()}")
    if given:
        return Path(given)
    return build_deb().build(arch, llm=llm)


def deb(directory: Path, package: str) -> Path:
    found = sorted(directory.glob(f"{package}_*.deb"))
    assert found, f"no {package} package in {directory}"
    return found[-1]


def version_of(deb_file: Path) -> str:
    return subprocess.run(["dpkg-deb", "--field", str(deb_file), "Version"], capture_output=True,
                          text=True, check=True).stdout.strip()


def with_version(deb_file: Path, version: str, dest: Path) -> Path:
    """The same package as a newer release: unpacked, its Version (and its exact dependency on
    itself) set to ``version``, packed again into ``dest`` (fast gzip: a test artefact)."""
    old = version_of(deb_file)
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="ha-repack-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["dpkg-deb", "--raw-extract", str(deb_file), str(tree)], check=True,
                       timeout=DPKG_DEB_TIMEOUT_S)
        control = tree / "DEBIAN" / "control"
        text = control.read_text()
        text = re.sub(r"^Version: .*$", f"Version: {version}", text, flags=re.M)
        control.write_text(text.replace(f"(= {old})", f"(= {version})"))
        name = deb_file.name.replace(f"_{old.split(':')[-1]}_", f"_{version}_")
        out = dest / name
        subprocess.run(["dpkg-deb", "-Zgzip", "-z1", "--root-owner-group", "--build",
                        str(tree), str(out)], check=True, capture_output=True,
                       timeout=DPKG_DEB_TIMEOUT_S)
    return out


def copy_debs(directory: Path, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(d, dest / d.name)) for d in sorted(directory.glob("*.deb"))]


def prepare(arch: str) -> None:
    """The emulated root and the packages of ``arch``: what the arm64 tests need, made ahead
    (tests/e2e/conftest.py starts this in the background when those tests are collected)."""
    from tests.e2e.container import ensure_foreign_rootfs

    ensure_foreign_rootfs(arch)
    built(arch, llm=False)


if __name__ == "__main__":
    import sys

    prepare(sys.argv[1])


# STAND-IN for an ARM /proc/cpuinfo under emulation. qemu-user 7.2 (Debian 12) passes the
# host's x86 /proc/cpuinfo through to arm64 programs, and onnxruntime's cpuinfo library
# crashes (SIGSEGV) parsing it; on a real arm64 box, and under qemu 8.2 and newer, the
# file describes the ARM CPU. This is a Raspberry Pi 4's (Cortex-A72), for the host's two
# CPUs, bound over /proc/cpuinfo in the emulated box and (by a drop-in) in the service.
EMULATED_CPUINFO = Path(__file__).with_name("cortex-a72.cpuinfo")
CPUINFO_INSIDE = "/usr/local/share/hybrid-agent-test/cpuinfo"
CPUINFO_DROPIN = "/etc/systemd/system/hybrid-agent.service.d/emulated-cpuinfo.conf"


def give_arm_cpuinfo(box: Container) -> None:
    """Put the stand-in ARM /proc/cpuinfo in an emulated box and in its hybrid-agent unit
    (whose ProtectProc= mounts a /proc of its own)."""
    target = box.root_path(CPUINFO_INSIDE)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(EMULATED_CPUINFO.read_text())
    dropin = box.root_path(CPUINFO_DROPIN)
    dropin.parent.mkdir(parents=True, exist_ok=True)
    dropin.write_text(f"# emulation only: tests/e2e/packages.py\n[Service]\n"
                      f"BindReadOnlyPaths={CPUINFO_INSIDE}:/proc/cpuinfo\n")
    box.sh(f"mount --bind {CPUINFO_INSIDE} /proc/cpuinfo && systemctl daemon-reload",
           check=True)
