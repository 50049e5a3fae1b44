"""`hybrid-agent models list|fetch|verify` on a copy of the real models, intact and damaged.

The copy is hard links into the cached models (no 200 MB copy); a file a test damages is
unlinked first and written anew, so the cache itself is never touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.models import DEFAULT_MODELS

EDGE_ROLES = ("stt", "tts")


def models_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRID_AGENT_")}
    return subprocess.run([sys.executable, "-m", "appliance.cli", "models", *args],
                          capture_output=True, text=True, timeout=120, check=False, env=env)


def _config(path: Path, tier: str, models: Path) -> Path:
    path.write_text(f"node:\n  tier: {tier}\n  models_dir: {models}\n")
    return path


@pytest.fixture
def edge_models(tmp_path: Path, models_dir: Path) -> Path:
    """stt and tts (not the LLM) under tmp_path/models, hard-linked from the cache."""
    dest = tmp_path / "models"
    for role in EDGE_ROLES:
        spec = DEFAULT_MODELS[role]
        (dest / spec.subdir).mkdir(parents=True)
        for f in spec.files:
            os.link(models_dir / spec.subdir / f.dest, dest / spec.subdir / f.dest)
    return dest


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_ino for p in sorted(root.rglob("*"))}


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.unlink()  # a hard link into the cache: write a new file, never through the link
    path.write_bytes(bytes(data))


def test_verify_passes_for_the_models_the_configs_models_dir_holds(
        tmp_path: Path, edge_models: Path) -> None:
    cfg = _config(tmp_path / "edge.yaml", "edge", edge_models)
    proc = models_cli("verify", "--config", str(cfg))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        f"OK   stt: whisper-base verified at {edge_models / 'whisper-base'}",
        f"OK   tts: en_US-joe-medium verified at {edge_models / 'piper/en_US-joe-medium.onnx'}"]


def test_verify_fails_naming_the_role_whose_file_is_missing(
        tmp_path: Path, edge_models: Path) -> None:
    gone = edge_models / "whisper-base" / "vocabulary.json"
    gone.unlink()
    proc = models_cli("verify", "--dir", str(edge_models), "--role", "stt", "--role", "tts")
    assert proc.returncode == 1
    assert f"FAIL stt: missing {gone}" in proc.stdout
    assert "OK   tts:" in proc.stdout


def test_verify_fails_on_a_single_flipped_byte(edge_models: Path) -> None:
    bad = edge_models / "piper" / "en_US-joe-medium.onnx.json"
    _flip_a_byte(bad)
    proc = models_cli("verify", "--dir", str(edge_models), "--role", "tts")
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"FAIL tts: {bad} has sha256 ")
    assert "expected 3d6d5410b3795cb1" in proc.stdout


def test_verify_on_a_tier_with_an_llm_wants_the_llm(tmp_path: Path, edge_models: Path) -> None:
    cfg = _config(tmp_path / "mid.yaml", "mid", edge_models)
    proc = models_cli("verify", "--config", str(cfg))
    assert proc.returncode == 1
    assert "OK   stt:" in proc.stdout and "OK   tts:" in proc.stdout
    assert f"FAIL llm: missing {edge_models / 'llm'}" in proc.stdout


def test_list_shows_every_model_and_which_are_absent_or_invalid(
        tmp_path: Path, edge_models: Path) -> None:
    _flip_a_byte(edge_models / "piper" / "en_US-joe-medium.onnx.json")
    cfg = _config(tmp_path / "edge.yaml", "edge", edge_models)
    proc = models_cli("list", "--config", str(cfg))
    assert proc.returncode == 1, proc.stderr  # the edge needs the voice it cannot use
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert set(rows) == {"stt", "tts", "llm"}  # all of them, whatever the tier
    assert "whisper-base" in rows["stt"] and " ok " in rows["stt"]
    assert "150 MB" in rows["stt"]
    assert "absent or invalid" in rows["tts"]
    assert "absent or invalid" in rows["llm"] and "SmolLM2-135M-Instruct" in rows["llm"]


def test_fetch_on_an_edge_config_takes_only_stt_and_tts_and_keeps_valid_ones(
        tmp_path: Path, edge_models: Path) -> None:
    cfg = _config(tmp_path / "edge.yaml", "edge", edge_models)
    # An empty wheelhouse: were anything fetched, pip would fail here (and never go online).
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir()
    before = _tree(edge_models)
    proc = models_cli("fetch", "--config", str(cfg), "--wheelhouse", str(wheelhouse))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["stt: whisper-base already present and valid",
                                        "tts: en_US-joe-medium already present and valid"]
    assert _tree(edge_models) == before  # same files, same inodes: nothing replaced or added


def test_list_exits_0_when_what_the_tier_needs_is_there_and_says_so_in_json(
        tmp_path: Path, edge_models: Path) -> None:
    """An edge needs no LLM: its absence is listed but is no failure; --json says the same."""
    import json

    cfg = _config(tmp_path / "edge.yaml", "edge", edge_models)
    proc = models_cli("list", "--config", str(cfg))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = models_cli("list", "--json", "--config", str(cfg))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = {m["role"]: m for m in json.loads(proc.stdout)}
    assert listed["stt"]["ok"] and listed["tts"]["ok"] and not listed["llm"]["ok"]
    assert listed["llm"]["message"].startswith("missing ")
    proc = models_cli("verify", "--json", "--dir", str(edge_models), "--role", "llm")
    assert proc.returncode == 1
    assert [m["role"] for m in json.loads(proc.stdout)] == ["llm"]
