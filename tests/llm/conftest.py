"""Fixtures for the LLM tests: the real SmolLM2 model, in-process or in real daemons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from appliance.llm.engine import Engine, EngineSettings

MODEL_FILE = "llm/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ID = "SmolLM2-135M-Instruct.Q4_1"
# Two threads: the CI box has two cores shared with the rest of the suite.
THREADS = 2


def llm_section(models_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The daemon's llm section for a local model with small, fast settings."""
    section: dict[str, Any] = {"mode": "local", "model": str(models_dir / MODEL_FILE),
                               "threads": THREADS, "context": 2048, "slots": 4, "queue": 8}
    section.update(overrides)
    return section


@pytest.fixture
def model_path(models_dir: Path) -> Path:
    return models_dir / MODEL_FILE


@pytest.fixture
async def make_engine(model_path: Path) -> AsyncIterator[Any]:
    """Start real engines on the real model: ``await make_engine(slots=..)``; stopped after."""
    started: list[Engine] = []

    async def make(**overrides: Any) -> Engine:
        settings = {"model_path": model_path, "model_id": MODEL_ID, "threads": THREADS,
                    "context": 2048, "slots": 4, "queue": 8, "max_tokens": 64}
        settings.update(overrides)
        engine = Engine(EngineSettings(**settings))
        started.append(engine)
        await engine.start()
        return engine

    yield make
    for engine in started:
        await engine.stop()
