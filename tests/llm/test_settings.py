"""The engine's settings from the config: the tier's defaults, without loading a model."""

from __future__ import annotations

from pathlib import Path

from appliance import config, hardware
from appliance.llm.engine import EngineSettings

DEFAULT_GGUF = "llm/SmolLM2-135M-Instruct.Q4_1.gguf"


def test_mid_tier_defaults_to_the_smollm2_file_and_physical_cores(tmp_path: Path) -> None:
    models = tmp_path / "models"
    cfg = config.build({"node": {"tier": "mid", "state_dir": str(tmp_path / "state"),
                                 "models_dir": str(models)}}, detected_tier="mid")
    settings = EngineSettings.from_config(cfg)
    assert cfg.llm.mode == "auto" and cfg.llm.threads == 0  # 0 = "physical cores"
    assert settings.model_path == models / DEFAULT_GGUF
    assert settings.model_id == "SmolLM2-135M-Instruct.Q4_1"
    assert settings.threads == hardware.detect().physical_cores
    assert settings.slots == cfg.llm.slots == 4
    assert (settings.context, settings.queue, settings.max_tokens) == \
        (cfg.llm.context, cfg.llm.queue, cfg.llm.max_tokens)


def test_models_dir_defaults_under_the_state_dir(tmp_path: Path) -> None:
    cfg = config.build({"node": {"tier": "mid", "state_dir": str(tmp_path)}},
                       detected_tier="mid")
    assert EngineSettings.from_config(cfg).model_path == tmp_path / "models" / DEFAULT_GGUF


def test_explicit_model_and_threads_win(tmp_path: Path) -> None:
    gguf = tmp_path / "other.gguf"
    cfg = config.build({"node": {"tier": "core", "state_dir": str(tmp_path)},
                        "llm": {"model": str(gguf), "threads": 3}}, detected_tier="core")
    settings = EngineSettings.from_config(cfg)
    assert settings.model_path == gguf and settings.model_id == "other"
    assert settings.threads == 3
