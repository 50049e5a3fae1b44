"""The warm-up decode before READY, and what a crash inside llama.cpp during it leaves behind.

A native crash cannot be caught; the engine writes a record before its warm-up and
removes it after, so the next start knows. The record is written here by hand the
way a crashed start leaves it (the mechanism), and on a CPU where llama.cpp's AMX
repacking really crashes, by a real crash (the cause the issue found).
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from appliance.llm import cpu
from appliance.llm.chat import LLMError
from appliance.llm.engine.component import Engine
from appliance.llm.engine.model import Model
from appliance.llm.engine.settings import EngineSettings
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
    # One thread: with two, both run the crashing AMX kernel, and the second to fault
    # can kill the process while faulthandler (which restores the default action
    # before it writes) is still writing the first one's report (seen in a core dump).
    crashing = await daemon_factory(wait_ready=False, llm=llm_section(
        models_dir, weight_repack="on", threads=1))
    rc = await crashing.wait(timeout=120)
    # The same AMX kernel faults in two ways: SIGSEGV on one Xeon; on another (a Firecracker
    # VM), its first tileloadd raises SIGILL (seen in gdb, ggml_backend_amx_mul_mat).
    reports = {-signal.SIGSEGV: "Segmentation fault", -signal.SIGILL: "Illegal instruction"}
    assert rc in reports, (rc, crashing.log())
    assert reports[rc] in crashing.log()  # faulthandler's stacks, for the journal
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


async def test_the_warm_up_and_every_later_decode_run_on_the_engine_thread(
        models_dir: Path) -> None:
    """libgomp keeps a pool of OpenMP threads per thread that starts parallel work; a
    warm-up on another thread left two pools, and libgomp, counting more threads than
    CPUs, then slept between the steps of every decode (33 instead of 85 tokens/s with
    one client on 2 cores). So the warm-up runs on the engine's thread, as all decodes."""
    section = llm_section(models_dir)
    model_path = Path(section["model"])
    engine = Engine(EngineSettings(model_path=model_path, model_id=model_path.stem,
                                        context=1024, slots=1))
    seen: list[str] = []
    warm_up = Model.warm_up

    def recording_warm_up(self: Model) -> None:
        seen.append(threading.current_thread().name)
        warm_up(self)

    Model.warm_up = recording_warm_up  # type: ignore[method-assign]
    try:
        await engine.start()
    finally:
        Model.warm_up = warm_up  # type: ignore[method-assign]
    try:
        assert engine._scheduler is not None
        later = await asyncio.wrap_future(engine._scheduler.run_job(
            lambda: threading.current_thread().name))
        assert seen == ["llm-engine"] and later == "llm-engine", (seen, later)
    finally:
        await engine.stop()


async def test_a_failed_warm_up_fails_the_start_and_leaves_no_engine_thread(
        models_dir: Path, tmp_path: Path) -> None:
    model_path = Path(llm_section(models_dir)["model"])
    engine = Engine(EngineSettings(model_path=model_path, model_id=model_path.stem,
                                        context=1024, slots=1, state_dir=tmp_path))
    warm_up = Model.warm_up

    def failing_warm_up(self: Model) -> None:
        raise LLMError("the warm-up decode produced NaN logits")

    Model.warm_up = failing_warm_up  # type: ignore[method-assign]
    try:
        with pytest.raises(LLMError, match="NaN logits"):
            await engine.start()
    finally:
        Model.warm_up = warm_up  # type: ignore[method-assign]
    assert not any(t.name == "llm-engine" for t in threading.enumerate())
    assert not (tmp_path / RECORD_NAME).exists()  # a Python error is no crash to remember
