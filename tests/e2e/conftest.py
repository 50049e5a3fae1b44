"""Fixtures of the real-systemd e2e tests: the cached root, the wheelhouse, a booted container.

These tests need root, systemd-nspawn and debootstrap. They fail, loudly,
where those are missing: CI (`.ci/run`) installs them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.container import CACHE, Container, ensure_rootfs, ensure_wheelhouse

REPO = Path(__file__).resolve().parents[2]
SRC_INSIDE = "/usr/local/src/hybrid-agent"
WHEELHOUSE_INSIDE = "/srv/wheelhouse"
MODELS_INSIDE = "/srv/models"
COPY_IGNORE = (".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".mypy_cache",
               ".ruff_cache", "build", "dist", "node_modules")
WAIT_POLL_S = 0.5
ARM64_TESTS = "tests/e2e/test_deb_arm64.py"
PREPARE_ENV = "HYBRID_AGENT_TEST_PREPARE"
PREPARE_STOP_TIMEOUT_S = 60
_preparing: subprocess.Popen[bytes] | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start making the emulated arm64 root and package in the background once the arm64
    tests are collected: under emulation that takes long enough to matter to the suite's
    time, and overlaps the tests before it. Their fixtures wait on the same file locks
    (or do the work themselves if this is off: HYBRID_AGENT_TEST_PREPARE=0)."""
    global _preparing
    wanted = any(ARM64_TESTS in str(item.fspath) for item in session.items)
    if not wanted or os.environ.get(PREPARE_ENV) == "0" or os.geteuid() != 0:
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "prepare-arm64.log", "w") as log:
        _preparing = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.packages", "arm64"], cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO)})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _preparing is not None and _preparing.poll() is None:
        os.killpg(_preparing.pid, signal.SIGTERM)
        _preparing.wait(PREPARE_STOP_TIMEOUT_S)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_prereqs() -> None:
    """Root and the container tools; a failure here names what to install."""
    if os.geteuid() != 0:
        pytest.fail("the e2e tests boot a container: run them as root (CI does)")
    missing = [t for t in ("systemd-nspawn", "nsenter", "debootstrap") if not shutil.which(t)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: apt-get install systemd-container "
                    "debootstrap util-linux (.ci/run does)")


@pytest.fixture(scope="session")
def rootfs(e2e_prereqs: None) -> Path:
    return ensure_rootfs()


@pytest.fixture(scope="session")
def wheelhouse(e2e_prereqs: None) -> Path:
    return ensure_wheelhouse(REPO, sys.executable)


@pytest.fixture(scope="module")
def container_factory(rootfs: Path, wheelhouse: Path,
                      models_dir: Path) -> Iterator[Callable[..., Container]]:
    """Boot containers holding a snapshot of this checkout; all stopped at module end."""
    made: list[Container] = []

    def make(name: str, binds_ro: dict[str, str] | None = None) -> Container:
        c = Container(name, binds_ro={str(wheelhouse): WHEELHOUSE_INSIDE,
                                      str(models_dir): MODELS_INSIDE, **(binds_ro or {})})
        made.append(c)
        c.boot(rootfs)
        # A snapshot: others may edit the working tree while the test runs.
        c.copy_in(REPO, SRC_INSIDE, ignore=COPY_IGNORE)
        return c

    yield make
    for c in made:
        c.stop()


def wait_until(check: Callable[[], object], timeout_s: float, what: str) -> object:
    """Poll ``check`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(WAIT_POLL_S)
