"""Loading the model is part of readiness: EXTEND_TIMEOUT_USEC while it loads, then READY=1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.llm.engine import LOAD_TIMEOUT_S
from tests.llm.conftest import MODEL_ID, llm_section

pytestmark = pytest.mark.model

NOTIFY_DEADLINE_S = 120.0
LOADING = "loading llm"


async def test_ready_comes_after_the_model_loaded_and_health_never_says_ok_before(
        daemon_factory: Any, models_dir: Path) -> None:
    d = await daemon_factory(wait_ready=False, llm=llm_section(models_dir))
    extend = await d.notify.wait_for("EXTEND_TIMEOUT_USEC", NOTIFY_DEADLINE_S)
    while LOADING not in extend:  # earlier components extend the timeout too
        extend = await d.notify.wait_for("EXTEND_TIMEOUT_USEC", NOTIFY_DEADLINE_S)
    usec = int(extend.splitlines()[0].split("=", 1)[1])
    assert usec >= LOAD_TIMEOUT_S * 1_000_000  # systemd waits as long as a load may take
    # The HTTP site is up while the model loads; /health must not say ready before READY=1.
    async with aiohttp.ClientSession() as s, s.get(d.url + "/health") as r:
        health = await r.json()
        ready_sent = any(line == "READY=1" for line in d.notify.lines()) or any(
            line == "READY=1" for m in d.notify.take_pending() for line in m.splitlines())
    if r.status == 503:
        # Answered while loading: the load runs off the event loop.
        assert health["ready"] is False and health["phase"].startswith("loading"), health
    else:
        assert r.status == 200 and ready_sent, (r.status, health)
    await d.wait_ready()
    messages = [m for _, m in d.notify.messages]
    loading_at = next(i for i, m in enumerate(messages)
                      if m.startswith("EXTEND_TIMEOUT_USEC=") and LOADING in m)
    ready_at = next(i for i, m in enumerate(messages) if "READY=1" in m.splitlines())
    assert loading_at < ready_at, messages
    _, status = await d.get_json("/api/status")
    llm = status["components"]["llm"]
    assert llm["model"] == MODEL_ID and llm["context"] > 0 and llm["healthy"]
    async with aiohttp.ClientSession() as s, s.get(d.url + "/health") as r:
        assert r.status == 200
