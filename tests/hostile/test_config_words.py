"""Issue 15, item 9: YAML 1.1 words (off, on, yes, no) in the config, one test per kind of key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance import config as config_mod


def load(tmp_path: Path, text: str) -> config_mod.Config:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return config_mod.load(path, env={}, detected_tier="edge")


def test_a_word_key_takes_off_as_docs_configuration_md_spells_it(tmp_path: Path) -> None:
    """Red team: `llm.mode: off` gave "expected a string, found a boolean (False)"."""
    cfg = load(tmp_path, "llm:\n  mode: off\nworld:\n  mode: off\n")
    assert cfg.llm.mode == "off" and cfg.world.mode == "off"
    assert load(tmp_path, "llm:\n  weight_repack: on\n").llm.weight_repack == "on"


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "Yes", "OFF"])
def test_a_free_text_key_keeps_the_word(tmp_path: Path, word: str) -> None:
    cfg = load(tmp_path, f"node:\n  name: {word}\nvoice:\n  language: {word}\n")
    assert cfg.node.name == word and cfg.voice.language == word
    assert type(cfg.node.name) is str  # a plain str: dumps and compares like one


def test_a_word_in_a_list_and_in_a_mapping_stays_a_word(tmp_path: Path) -> None:
    cfg = load(tmp_path, "discovery:\n  interfaces: [on, eth0]\n"
                         "tools:\n  placement: {shell: remote, no: local}\n")
    assert cfg.discovery.interfaces == ["on", "eth0"]
    assert cfg.tools.placement == {"shell": "remote", "no": "local"}


def test_a_word_outside_a_keys_choices_is_named(tmp_path: Path) -> None:
    with pytest.raises(config_mod.ConfigError) as err:
        load(tmp_path, "discovery:\n  ip_version: off\n")
    assert "discovery.ip_version: found 'off'; allowed: all, v4, v6" in str(err.value)


@pytest.mark.parametrize(("word", "value"), [("yes", True), ("on", True), ("On", True),
                                             ("no", False), ("off", False), ("OFF", False),
                                             ("true", True), ("false", False)])
def test_a_boolean_key_takes_the_yaml_1_1_words(tmp_path: Path, word: str, value: bool) -> None:
    cfg = load(tmp_path, f"voice:\n  enabled: {word}\nllm:\n  serve: {word}\n")
    assert cfg.voice.enabled is value and cfg.llm.serve is value


def test_a_quoted_word_is_a_string_even_for_a_boolean_key(tmp_path: Path) -> None:
    with pytest.raises(config_mod.ConfigError) as err:
        load(tmp_path, "voice:\n  enabled: 'yes'\n")
    assert "voice.enabled: expected true or false, found a string ('yes')" in str(err.value)


def test_an_experts_word_key_inside_a_mapping(tmp_path: Path) -> None:
    cfg = load(tmp_path, "agent:\n  experts:\n    on:\n      tool_choice: auto\n")
    assert set(cfg.agent.experts) == {"on"}


def test_config_check_prints_the_words_back_as_strings(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("llm:\n  mode: off\nvoice:\n  enabled: no\n")
    out = subprocess.run([sys.executable, "-m", "appliance.cli", "config", "check",
                          str(tmp_path / "c.yaml")], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert "  mode: 'off'\n" in out and "  enabled: false\n" in out
    # And what it printed loads back to the same config.
    (tmp_path / "again.yaml").write_text(out)
    assert config_mod.load(tmp_path / "again.yaml", env={}).llm.mode == "off"
