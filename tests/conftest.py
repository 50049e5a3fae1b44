"""Fixtures shared by every test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import DaemonProcess, free_port, minimal_config

DEFAULT_TEST_MODELS = Path("/var/cache/hybrid-agent-test/models")


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The default models, fetched once per machine by `make models`."""
    path = Path(os.environ.get("HYBRID_AGENT_TEST_MODELS", DEFAULT_TEST_MODELS))
    if not path.is_dir():
        pytest.fail(f"models not found in {path}: run `make models` (make test does)")
    return path


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
async def daemon_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start real daemons: ``await daemon_factory(**sections)``; stopped at teardown."""
    started: list[DaemonProcess] = []

    async def make(*, wait_ready: bool = True, watchdog_usec: int | None = None,
                   env: dict[str, str] | None = None, netns: str | None = None,
                   **sections: dict[str, Any]) -> DaemonProcess:
        d_tmp = tmp_path / f"daemon{len(started)}"
        d_tmp.mkdir()
        cfg = minimal_config(d_tmp / "state", free_port(), **sections)
        d = DaemonProcess(d_tmp, cfg, env=env, watchdog_usec=watchdog_usec, netns=netns)
        started.append(d)
        await d.start(wait_ready=wait_ready)
        return d

    yield make
    for d in started:
        await d.stop()
