"""The warm-up decode before READY, and what a crash inside llama.cpp during it leaves behind.

A native crash cannot be caught; the engine writes a record before its warm-up and
removes it after, so the next start knows. The record is written here by hand the
way a crashed start leaves it (the mechanism), and on a CPU where llama.cpp's AMX
repacking really crashes, by a real crash (the cause the issue found).
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from appliance.llm import cpu
from appliance.llm.engine.warmup import RECORD_NAME
from tests.llm.conftest import llm_section

pytestmark = pytest.mark.model

EXIT_WOULD_CRASH = 3


def write_record(state: Path, model: Path, repack: bool, age_s: float = 5.0) -> Path:
    state.mkdir(parents=True, exist_ok=True)
    path = state / RECORD_NAME
    path.write_text(json.dumps({"model": str(model), "repack": repack,
                                "build": cpu.build_id(), "at": time.time() - age_s}))
    return path


async def test_a_healthy_start_warms_up_and_leaves_no_record(daemon_factory: Any,
                                                              models_dir: Path) -> None:
    d = await daemon_factory(llm=llm_section(models_dir))
    _, status = await d.get_json("/api/status")
    assert status["components"]["llm"]["requests"] == 0  # the warm-up is not a request
    assert not (Path(d.config["node"]["state_dir"]) / RECORD_NAME).exists()
    assert "loading and warming up" in d.log()


async def test_after_a_crash_with_repacking_auto_retries_without_it(
        daemon_factory: Any, models_dir: Path, tmp_path: Path) -> None:
    section = llm_section(models_dir, weight_repack="auto")
    state = tmp_path / "crashed-state"
    record = write_record(state, Path(section["model"]), repack=True)
    d = await daemon_factory(llm=section, node={"state_dir": str(state)})
    _, status = await d.get_json("/api/status")
    assert status["components"]["llm"]["weight_repack"].startswith(
        "off: the last start crashed")
    assert not record.exists()
    assert "trying again with weight repacking off" in d.log()


async def test_a_crash_with_the_same_settings_fails_the_start_with_the_cause(
        daemon_factory: Any, models_dir: Path, tmp_path: Path) -> None:
    section = llm_section(models_dir, weight_repack="off")
    state = tmp_path / "crashed-state"
    write_record(state, Path(section["model"]), repack=False)
    d = await daemon_factory(wait_ready=False, llm=section, node={"state_dir": str(state)})
    assert await d.wait() == EXIT_WOULD_CRASH
    # The cause is the last STATUS= (it comes with STOPPING=1, in one message).
    statuses = [line for line in d.notify.lines() if line.startswith("STATUS=")]
    assert statuses and statuses[-1].startswith("STATUS=failed"), d.notify.messages
    assert "crashed inside llama.cpp while loading and warming up" in statuses[-1]
    assert "weight repacking off" in statuses[-1]
    assert not any("READY=1" in m for _, m in d.notify.messages)


async def test_an_old_or_foreign_record_is_ignored(daemon_factory: Any, models_dir: Path,
                                                   tmp_path: Path) -> None:
    section = llm_section(models_dir, weight_repack="off")
    state = tmp_path / "crashed-state"
    record = write_record(state, Path(section["model"]), repack=False, age_s=3600)
    # An hour-old crash does not block this start.
    d = await daemon_factory(llm=section, node={"state_dir": str(state)})
    assert not record.exists()
    _, status = await d.get_json("/api/status")
    assert status["components"]["llm"]["weight_repack"] == "llm.weight_repack is off"


@pytest.mark.skipif("AMX_INT8 = 1" not in cpu.system_info(),
                    reason="needs a llama.cpp build with AMX on an AMX CPU (the crash is "
                           "llama.cpp issue 20824)")
async def test_the_real_amx_crash_is_explained_and_auto_avoids_it(
        daemon_factory: Any, models_dir: Path, tmp_path: Path) -> None:
    crashing = await daemon_factory(wait_ready=False, llm=llm_section(models_dir,
                                                                      weight_repack="on"))
    rc = await crashing.wait(timeout=120)
    assert rc == -signal.SIGSEGV, crashing.log()
    assert "Segmentation fault" in crashing.log()  # faulthandler's stacks, for the journal
    state = Path(crashing.config["node"]["state_dir"])
    assert (state / RECORD_NAME).exists()
    # The same settings again: a clear failure instead of another crash.
    again = await daemon_factory(wait_ready=False, llm=llm_section(
        models_dir, weight_repack="on"), node={"state_dir": str(state)})
    assert await again.wait() == EXIT_WOULD_CRASH
    assert "weight repacking on" in again.log()
    # auto (the default): starts and answers, repacking off.
    fixed = await daemon_factory(llm=llm_section(models_dir), node={"state_dir": str(state)})
    _, status = await fixed.get_json("/api/status")
    assert status["components"]["llm"]["weight_repack"].startswith("off:")
