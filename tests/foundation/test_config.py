"""Config parsing: defaults, tier overlays, every bad config -> exit 2 naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from appliance import config as config_mod


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True,
                          text=True, timeout=60, env=full_env, check=False)


BAD_CASES = [
    # (yaml text, key path named, words that must appear)
    ("http:\n  prt: 8700\n", "http.prt", "unknown key"),
    ("bogus:\n  x: 1\n", "bogus", "unknown key"),
    ("http:\n  port: eighty\n", "http.port", "expected a whole number"),
    ("http:\n  port: 70000\n", "http.port", "allowed: 1 to 65535"),
    ("http:\n  port: 0\n", "http.port", "allowed: 1 to 65535"),
    ("llm:\n  mode: sometimes\n", "llm.mode", "allowed: auto, local, remote, off"),
    ("voice:\n  enabled: 'yes'\n", "voice.enabled", "expected true or false"),
    ("discovery:\n  static_peers: http://x\n", "discovery.static_peers", "expected a list"),
    ("node:\n  tier: giant\n", "node.tier", "allowed: edge, mid, core"),
    ("http: 8700\n", "http", "expected a mapping"),
    ("agent:\n  experts:\n    coder:\n      sytem_prompt: x\n",
     "agent.experts.coder.sytem_prompt", "unknown key"),
    # YAML reads a bare `no` as false: the message says how to write "none".
    ("voice:\n  wake_words: no\n", "voice.wake_words", "write [] for none"),
    ("voice:\n  wake_words: [hey_siri]\n", "voice.wake_words[0]", "allowed: okay_nabu"),
    ("voice:\n  wake_words: [hey_rhasspy]\n", "voice.wake_words[0]", "only in openwakeword"),
    ("voice:\n  wake_sensitivity: {on: 0.5}\n", "voice.wake_sensitivity.on", "unknown key"),
    ("voice:\n  wake_sensitivity: {okay_nabu: 2}\n", "voice.wake_sensitivity.okay_nabu",
     "allowed: 0.0 to 1.0"),
    ("tools:\n  placement: {shell: nearby}\n", "tools.placement.shell",
     "allowed: auto, local, remote"),
    ("llm:\n  endpoints: [core.local:8700]\n", "llm.endpoints[0]", "expected an http(s) URL"),
    ("llm:\n  model: 'hf://acme/tiny/model.gguf'\n", "llm.model", "SHA-256"),
]


@pytest.mark.parametrize(("text", "key", "words"), BAD_CASES, ids=[c[1] for c in BAD_CASES])
def test_bad_config_exit_2_names_file_and_key(tmp_path, text, key, words):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    for args in (("config", "check", str(path)), ("run", "--config", str(path))):
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        msg = proc.stderr.strip()
        assert len(msg.splitlines()) == 1, msg  # one message, never a traceback
        assert "Traceback" not in msg
        assert str(path) in msg and f": {key}:" in msg and words in msg, msg


def test_not_yaml_and_unreadable_files(tmp_path):
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("http: [1, 2\n")
    proc = run_cli("config", "check", str(bad_yaml))
    assert proc.returncode == 2 and "not valid YAML at line" in proc.stderr
    assert str(bad_yaml) in proc.stderr

    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    proc = run_cli("config", "check", str(binary))
    assert proc.returncode == 2 and "not UTF-8" in proc.stderr

    a_dir = tmp_path / "adir"
    a_dir.mkdir()  # root can read any file, so an unreadable path is a directory here
    proc = run_cli("config", "check", str(a_dir))
    assert proc.returncode == 2 and "cannot read the file" in proc.stderr

    proc = run_cli("config", "check", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "file not found" in proc.stderr

    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    proc = run_cli("config", "check", str(scalar))
    assert proc.returncode == 2 and "expected a mapping of sections" in proc.stderr


def test_everything_off_config_is_valid_and_check_prints_effective_config(tmp_path):
    path = tmp_path / "off.yaml"
    path.write_text("discovery: {enabled: false}\nllm: {mode: 'off'}\nvoice: {enabled: false}\n")
    proc = run_cli("config", "check", str(path))
    assert proc.returncode == 0, proc.stderr
    effective = yaml.safe_load(proc.stdout)
    assert effective["llm"]["mode"] == "off" and effective["voice"]["enabled"] is False
    # Every default is filled in.
    assert effective["http"]["port"] == 8700
    assert effective["node"]["name"] and effective["node"]["state_dir"]
    assert set(effective) == {"node", "http", "logging", "discovery", "llm", "voice", "wyoming",
                              "tools", "agent", "intents", "world", "security"}


@pytest.mark.parametrize("tier", config_mod.TIERS)
def test_tier_defaults_round_trip(tier):
    text = config_mod.tier_defaults_yaml(tier)
    assert text.count("# ") > 20  # every key is documented
    parsed = yaml.safe_load(text)
    cfg = config_mod.build(parsed, env={}, hostname="h")
    assert cfg.tier == tier
    again = config_mod.build({"node": {"tier": tier}}, env={}, hostname="h")
    assert cfg == again


def test_defaults_command_prints_the_same_yaml():
    proc = run_cli("config", "defaults", "--tier", "mid")
    assert proc.returncode == 0
    assert proc.stdout == config_mod.tier_defaults_yaml("mid")


def test_state_dir_from_env_then_default():
    cfg = config_mod.build({}, env={"STATE_DIRECTORY": "/var/lib/x:/var/lib/y"}, hostname="h")
    assert cfg.node.state_dir == "/var/lib/x" and cfg.node.models_dir == "/var/lib/x/models"
    cfg = config_mod.build({}, env={}, hostname="kitchen")
    assert cfg.node.state_dir == "/var/lib/hybrid-agent" and cfg.node.name == "kitchen"


def test_tier_overlays_apply_and_user_wins():
    assert config_mod.build({"node": {"tier": "core"}}, env={}).llm.mode == "local"
    assert config_mod.build({"node": {"tier": "edge"}}, env={}).llm.mode == "remote"
    cfg = config_mod.build({"node": {"tier": "core"}, "llm": {"mode": "off"}}, env={})
    assert cfg.llm.mode == "off" and cfg.llm.serve is True


def test_config_sources_in_order(tmp_path):
    explicit = tmp_path / "a.yaml"
    explicit.write_text("http: {port: 9001}\n")
    via_env = tmp_path / "b.yaml"
    via_env.write_text("http: {port: 9002}\n")
    env = {"HYBRID_AGENT_CONFIG": str(via_env)}
    assert config_mod.load(explicit, env=env, detected_tier="edge").http.port == 9001
    assert config_mod.load(None, env=env, detected_tier="edge").http.port == 9002
    # A named file that is missing is an error; the default path missing means tier defaults.
    with pytest.raises(config_mod.ConfigError, match="file not found"):
        config_mod.load(None, env={"HYBRID_AGENT_CONFIG": str(tmp_path / "nope.yaml")},
                        detected_tier="edge")
    if not config_mod.DEFAULT_CONFIG_PATH.exists():
        cfg = config_mod.load(None, env={}, detected_tier="mid")
        assert cfg.tier == "mid" and "absent" in cfg.source


def test_frozen_sections():
    cfg = config_mod.build({}, env={})
    with pytest.raises(AttributeError):
        cfg.http.port = 1  # type: ignore[misc]


def test_every_field_is_documented():
    docs = config_mod.field_docs()
    missing = [key for key, doc, _ in docs if not doc]
    assert not missing, missing
    assert ("http.port", "TCP port.", 8700) in docs


def test_docs_config_reference_is_current():
    """docs/configuration.md is generated from the dataclasses; regenerate with the script."""
    from scripts import config_reference

    current = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert current == config_reference.render(), \
        "docs/configuration.md is stale: run python scripts/config_reference.py"


def test_tilde_in_path_keys_means_the_home_directory(tmp_path):
    """docs/operations.md's `node: {models_dir: ~/hybrid-agent-models}` works as written."""
    home = tmp_path / "home"
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text(yaml.safe_dump({
        "node": {"state_dir": "~/state", "models_dir": "~/hybrid-agent-models"},
        "llm": {"model": "~/m/model.gguf"},
        "voice": {"stt_model": "~/whisper", "tts_voice": "~/voice.onnx"},
        "security": {"cluster_key_file": "~/cluster.key"},
        "tools": {"timezone": "~not-a-path"},  # only path keys are expanded
    }))
    proc = run_cli("config", "check", str(cfg_file), env={"HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    effective = yaml.safe_load(proc.stdout)  # the header line is a YAML comment
    assert effective["node"]["state_dir"] == f"{home}/state"
    assert effective["node"]["models_dir"] == f"{home}/hybrid-agent-models"
    assert effective["llm"]["model"] == f"{home}/m/model.gguf"
    assert effective["voice"]["stt_model"] == f"{home}/whisper"
    assert effective["voice"]["tts_voice"] == f"{home}/voice.onnx"
    assert effective["security"]["cluster_key_file"] == f"{home}/cluster.key"
    assert effective["tools"]["timezone"] == "~not-a-path"


def test_the_without_systemd_example_in_the_docs_uses_a_tilde_the_config_expands():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    assert "models_dir: ~/hybrid-agent-models" in doc  # the example this expansion serves
    cfg = config_mod.build({"node": {"models_dir": "~/hybrid-agent-models"}}, env={})
    assert cfg.node.models_dir == str(Path.home() / "hybrid-agent-models")


@pytest.mark.parametrize("cpus", [{0}, None])
def test_threads_0_means_the_physical_cores_this_process_may_use(cpus: set[int] | None) -> None:
    """voice.stt_threads and llm.threads read 0 by the same count: the affinity mask (and
    cgroup quota) of the process, not the machine's logical CPUs; Whisper takes one thread
    where that count is 2 or fewer (measured faster there)."""
    import os

    code = ("from appliance import config, hardware; c = config.build({}); "
            "print(c.voice.stt_thread_count, c.llm.thread_count, "
            "hardware.detect().physical_cores, "
            "config.build({'voice': {'stt_threads': 3}}).voice.stt_thread_count)")
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True, preexec_fn=pin)
    stt, llm, physical, explicit = map(int, proc.stdout.split())
    assert llm == physical and explicit == 3
    assert stt == (1 if physical <= 2 else physical)
    if cpus is not None:
        assert stt == len(cpus)  # one CPU allowed: one thread, whatever os.cpu_count() says

