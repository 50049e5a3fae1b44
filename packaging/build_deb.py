#!/usr/bin/env python3
"""Build the hybrid-agent Debian packages (`make deb [ARCH=arm64]`).

Everything happens inside a clean Debian 12 root of the target architecture
(arm64 runs under qemu-user-static through binfmt_misc), so nothing of the
build machine's Python leaks into the packages:

1. the build root: mmdebstrap with debhelper and python3-venv, made once and
   cached (``CACHE/deb/root-bookworm-ARCH``); every build runs in a throwaway
   overlay of it;
2. the wheels: ``pip wheel`` in the root (with network) fetches every binary
   wheel the tier extras need and turns the few pure-Python sdists into wheels;
   cached per architecture and pyproject.toml (``CACHE/deb/wheels-ARCH-HASH``).
   llama-cpp-python comes from the wheel ``make llama-wheel`` built once
   (amd64 only: arm64 builds hybrid-agent alone);
3. ``dpkg-buildpackage`` with the network off: debian/build-venv makes the venv at
   /opt/hybrid-agent/venv from those wheels only;
4. ``lintian --pedantic`` on the packages: an error fails the build.

The packages land in ``--out`` (default ``dist/``), and a copy of the build stays
in ``CACHE/deb/build-ARCH-HASH`` keyed by the source, so a second call with the
same tree takes seconds. Uses the standard library only.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("HYBRID_AGENT_TEST_CACHE", "/var/cache/hybrid-agent-test"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
ROOT_PACKAGES = ("python3", "python3-venv", "debhelper", "ca-certificates")
ARCHES = ("amd64", "arm64")
LLAMA_WHEELS = CACHE / "wheels"
LLAMA_ARCHES = ("amd64",)
# What goes into a package, and so into the key of a cached build.
SOURCE_PARTS = ("pyproject.toml", "README.md", "LICENSE", "appliance", "installer", "units",
                "etc", "packaging")
IGNORE = ("__pycache__", "*.pyc", "*.egg-info", ".mypy_cache", ".ruff_cache", "build", "dist")
# units/ and etc/ files, under the names debhelper looks for in debian/.
DEBIAN_NAMES = {
    "units/hybrid-agent.service": "hybrid-agent.service",
    "units/hybrid-agent.sysusers": "hybrid-agent.sysusers",
    "units/hybrid-agent.tmpfiles": "hybrid-agent.tmpfiles",
    "units/hybrid-agent-tools.service": "hybrid-agent-llm.hybrid-agent-tools.service",
    "units/hybrid-agent-tools.socket": "hybrid-agent-llm.hybrid-agent-tools.socket",
}
NOLLM_PROFILE = "pkg.hybrid-agent.nollm"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CA_INSIDE = "/srv/host-ca.crt"
PASSED_ENV = ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT",
              "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY")
BUILD_TIMEOUT_S = 3 * 3600


class BuildError(Exception):
    """The packages could not be built; the message says what to do."""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="build_deb.py", description="Build hybrid-agent_VERSION_ARCH.deb (and, on "
        "amd64, hybrid-agent-llm) inside a clean Debian 12 root; see docs/operations.md.")
    p.add_argument("--arch", choices=ARCHES, default=host_arch(),
                   help="target architecture (default: this machine's)")
    p.add_argument("--out", type=Path, default=REPO / "dist",
                   help="where the .deb files go (default: dist/)")
    p.add_argument("--no-llm", action="store_true",
                   help="build hybrid-agent only (always so on arm64)")
    args = p.parse_args(argv)
    try:
        built = build(args.arch, llm=not args.no_llm and args.arch in LLAMA_ARCHES)
    except BuildError as exc:
        print(f"build_deb: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for deb in debs_in(built):
        shutil.copy2(deb, args.out / deb.name)
        print(f"build_deb: {args.out / deb.name}")
    return 0


def build(arch: str, *, llm: bool) -> Path:
    """The directory holding the built .deb files and lintian.txt (cached by source). One
    build per architecture at a time on a machine: a second caller waits, then reuses it."""
    (CACHE / "deb").mkdir(parents=True, exist_ok=True)
    with open(CACHE / "deb" / f".lock-{arch}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(arch, llm=llm)


def _build_locked(arch: str, *, llm: bool) -> Path:
    with tempfile.TemporaryDirectory(prefix=f"hybrid-agent-deb-{arch}-", dir="/var/tmp") as tmp:
        stage = Path(tmp)
        src = stage / "hybrid-agent"
        # One copy, taken now, is both what the key is made of and what is built: others
        # may edit the tree during a long (emulated) build.
        stage_source(REPO, src)
        key = source_key(src, arch, llm)
        done = CACHE / "deb" / f"build-{arch}-{key}"
        if (done / ".complete").exists():
            say(f"{arch}: packages of this source already built in {done}")
            return done
        _check_tools(arch)
        if llm and not list(LLAMA_WHEELS.glob("llama_cpp_python-*.whl")):
            raise BuildError(f"no llama-cpp-python wheel in {LLAMA_WHEELS}: run `make "
                             "llama-wheel` first (or pass --no-llm)")
        started = time.monotonic()
        root = ensure_root(arch)
        wheels = ensure_wheels(arch, root, src, llm=llm)
        for old in (CACHE / "deb").glob(f"build-{arch}-*"):
            shutil.rmtree(old, ignore_errors=True)  # one build per architecture is kept
        say(f"{arch}: dpkg-buildpackage in a clean {SUITE} root, network off"
            + ("" if arch == host_arch() else " (emulated: slow)"))
        profiles = [] if llm else [f"--build-profiles={NOLLM_PROFILE}"]
        # -d: the root holds exactly the Build-Depends (ROOT_PACKAGES), and on purpose no
        # build-essential, which dpkg-checkbuilddeps would add: with no compiler in the
        # root, nothing in the packages can have been compiled here.
        in_root(root, stage, ["sh", "-c", "cd /build/hybrid-agent && dpkg-buildpackage -b -d "
                              "--no-sign " + " ".join(profiles)],
                binds_ro={wheels: "/srv/wheels"}, network=False)
        tmp_done = done.with_name(done.name + ".tmp")
        shutil.rmtree(tmp_done, ignore_errors=True)
        tmp_done.mkdir(parents=True)
        for deb in stage.glob("*.deb"):
            shutil.move(deb, tmp_done / deb.name)
    report = lint(tmp_done)
    (tmp_done / "lintian.txt").write_text(report)
    (tmp_done / ".complete").write_text(f"{time.monotonic() - started:.0f}\n")
    os.replace(tmp_done, done)
    say(f"{arch}: built {', '.join(d.name for d in debs_in(done))} in "
        f"{time.monotonic() - started:.0f} s")
    return done


def debs_in(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.deb"))


# ---------------------------------------------------------------- the root and the wheels


def ensure_root(arch: str) -> Path:
    """The cached build root for ``arch`` (mmdebstrap, once; about 2 minutes emulated)."""
    root = CACHE / "deb" / f"root-{SUITE}-{arch}"
    if (root / "usr/bin/dh").exists():
        return root
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    say(f"{arch}: making the build root {root} with mmdebstrap (once)")
    _run(["mmdebstrap", "--variant=apt", f"--arch={arch}",
          f"--include={','.join(ROOT_PACKAGES)}", SUITE, str(tmp), MIRROR])
    os.replace(tmp, root)
    return root


def ensure_wheels(arch: str, root: Path, src: Path, *, llm: bool) -> Path:
    """Every wheel hybrid-agent[voice(,llm)] of the tree ``src`` needs on ``arch``, made in its
    root (cached by pyproject.toml)."""
    digest = hashlib.sha256((src / "pyproject.toml").read_bytes()).hexdigest()[:16]
    extras = "voice,llm" if llm else "voice"
    wheels = CACHE / "deb" / f"wheels-{arch}-{extras.replace(',', '-')}-{digest}"
    if (wheels / ".complete").exists():
        return wheels
    for old in (CACHE / "deb").glob(f"wheels-{arch}-{extras.replace(',', '-')}-*"):
        shutil.rmtree(old, ignore_errors=True)
    tmp = wheels.with_name(wheels.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    say(f"{arch}: fetching the wheels of hybrid-agent[{extras}] in the build root (once per "
        "pyproject.toml)")
    binds = {LLAMA_WHEELS: "/srv/llama"} if llm else {}
    links = "--find-links /srv/llama" if llm else ""
    # The stage's copy of the tree, as the package build sees it.
    in_root(root, src.parent, ["sh", "-c", (
        "python3 -m venv /tmp/pip && /tmp/pip/bin/pip --disable-pip-version-check "
        f"--no-input wheel --use-pep517 --progress-bar off --wheel-dir /srv/out {links} "
        f"'/build/hybrid-agent[{extras}]' 'setuptools>=68' wheel")],
        binds_ro=binds, binds={tmp: "/srv/out"}, network=True)
    # The project's own wheel is built from the tree at each package build.
    for own in tmp.glob("hybrid_agent-*.whl"):
        own.unlink()
    (tmp / ".complete").touch()
    os.replace(tmp, wheels)
    return wheels


def in_root(root: Path, stage: Path, argv: list[str], *, binds_ro: dict[Path, str] | None = None,
            binds: dict[Path, str] | None = None, network: bool) -> None:
    """Run ``argv`` in a throwaway overlay of ``root`` with ``stage`` at /build (not booted)."""
    with tempfile.TemporaryDirectory(prefix="hybrid-agent-overlay-", dir="/var/tmp") as upper:
        cmd = ["systemd-nspawn", "--quiet", "-D", str(root), f"--overlay={root}:{upper}:/",
               "--register=no", "--keep-unit", "--console=pipe", f"--bind={stage}:/build",
               f"--machine=ha-deb-{os.getpid()}", "--setenv=LANG=C.UTF-8",
               "--setenv=DEB_BUILD_OPTIONS=nocheck"]
        if not network:
            cmd.append("--private-network")
        else:
            cmd += ["--resolv-conf=copy-host", *_network_settings()]
        cmd += [f"--bind-ro={host}:{inside}" for host, inside in (binds_ro or {}).items()]
        cmd += [f"--bind={host}:{inside}" for host, inside in (binds or {}).items()]
        _run([*cmd, "--", *argv])


def _network_settings() -> list[str]:
    """nspawn options handing the host's way to the package index to pip in the root: its
    CA bundle (it may hold a proxy's CA that the root's does not) and proxy/index variables."""
    out = []
    bundle = Path(os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
                  or HOST_CA_BUNDLE)
    if bundle.is_file():
        out += [f"--bind-ro={bundle.resolve()}:{CA_INSIDE}", f"--setenv=PIP_CERT={CA_INSIDE}"]
    for name in PASSED_ENV:
        if os.environ.get(name):
            out.append(f"--setenv={name}={os.environ[name]}")
    return out


def stage_source(repo: Path, dest: Path) -> None:
    """The parts of the tree a package is made of, with debian/ where debhelper wants it."""
    dest.mkdir(parents=True)
    for part in SOURCE_PARTS:
        src = repo / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns(*IGNORE))
        else:
            shutil.copy2(src, dest / part)
    shutil.copytree(repo / "packaging" / "debian", dest / "debian")
    for unit, name in DEBIAN_NAMES.items():
        shutil.copy2(repo / unit, dest / "debian" / name)


def source_key(repo: Path, arch: str, llm: bool) -> str:
    """A short hash of everything a package is made of (and the wheels' pyproject)."""
    h = hashlib.sha256(f"{arch} llm={llm}".encode())
    for part in SOURCE_PARTS:
        base = repo / part
        files = [base] if base.is_file() else sorted(
            p for p in base.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
        for f in files:
            h.update(str(f.relative_to(repo)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- lintian and helpers


def lint(directory: Path) -> str:
    """lintian --pedantic on the packages; BuildError when it reports an error."""
    debs = [str(d) for d in debs_in(directory)]
    say("lintian --pedantic " + " ".join(Path(d).name for d in debs))
    proc = subprocess.run(["lintian", "--pedantic", "--display-info", "--fail-on", "error",
                           *debs], capture_output=True, text=True, check=False)
    report = proc.stdout + proc.stderr
    print(report, end="", flush=True)
    if proc.returncode != 0:
        raise BuildError(f"lintian reported errors (exit {proc.returncode}); see above")
    return report


def host_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "amd64"


def _check_tools(arch: str) -> None:
    if os.geteuid() != 0:
        raise BuildError("the build runs in a container root: run it as root (sudo make deb)")
    missing = [t for t in ("mmdebstrap", "systemd-nspawn", "lintian") if not shutil.which(t)]
    if missing:
        raise BuildError(f"missing {', '.join(missing)}: apt-get install mmdebstrap "
                         "systemd-container lintian")
    if arch != host_arch():
        binfmt = Path("/proc/sys/fs/binfmt_misc") / f"qemu-{_qemu_name(arch)}"
        if not binfmt.exists():
            raise BuildError(f"cannot run {arch} programs here ({binfmt} is missing): "
                             "apt-get install qemu-user-static binfmt-support")


def _qemu_name(arch: str) -> str:
    return {"arm64": "aarch64", "amd64": "x86_64"}[arch]


def _run(cmd: list[str]) -> None:
    print("+ " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=BUILD_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{cmd[0]} exited {proc.returncode}: {' '.join(cmd[-3:])}")


def say(text: str) -> None:
    print(f"build_deb: {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
