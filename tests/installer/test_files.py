"""What the installer writes: configs in step with the CLI, unit gates, config edits kept."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance import config as config_mod
from installer import Paths, Result, apply, configfile
from installer.plan import Options, Plan
from tests.installer.conftest import install_command

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "units" / "hybrid-agent.service"
MAX_EXPOSURE = 2.0


@pytest.mark.parametrize("tier", config_mod.TIERS)
def test_etc_config_is_what_config_defaults_prints(tier: str) -> None:
    shipped = (REPO / "etc" / "hybrid-agent" / f"config.{tier}.yaml").read_text()
    assert shipped == config_mod.tier_defaults_yaml(tier), (
        f"etc/hybrid-agent/config.{tier}.yaml is stale: run `make etc-configs`")


@pytest.mark.parametrize("tier", config_mod.TIERS)
def test_rendered_config_loads_with_the_chosen_port(tmp_path: Path, tier: str) -> None:
    command = install_command(Paths().under(tmp_path))
    text = configfile.defaults(command, tier, 8123)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    cfg = config_mod.load(path, env={}, detected_tier="edge")
    assert (cfg.tier, cfg.http.port) == (tier, 8123)
    assert configfile.port(command, path) == 8123


def test_unit_exposure_is_at_most_2() -> None:
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze is missing (apt-get install systemd)"
    proc = subprocess.run([exe, "security", "--offline=yes", "--no-pager", str(UNIT)],
                          capture_output=True, text=True, check=False)
    m = re.search(r"Overall exposure level for hybrid-agent.service: (\d+\.\d)", proc.stdout)
    assert m, proc.stdout[-2000:] + proc.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE


def test_unit_targets_systemd_252() -> None:
    text = UNIT.read_text()
    for newer in ("notify-reload", "RestartSteps=", "RestartMaxDelaySec="):
        assert newer not in text
    for needed in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "User=hybrid-agent",
                   "ProtectSystem=strict", "CapabilityBoundingSet=\n", "DevicePolicy=closed",
                   "SystemCallFilter=@system-service", "UMask=0077",
                   "RestartPreventExitStatus=2 3"):
        assert needed in text, needed


def test_install_sh_is_clean_under_shellcheck() -> None:
    exe = shutil.which("shellcheck")
    assert exe, "shellcheck is missing (apt-get install shellcheck)"
    proc = subprocess.run([exe, str(REPO / "install.sh")], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout


def test_install_sh_refuses_an_old_python(tmp_path: Path) -> None:
    # A hand-written stand-in for Debian 11's python3 (3.9), which cannot be installed here.
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\ncase \"$*\" in\n  *version_info*) exit 1 ;;\n"
                    "  *python_version*) echo 3.9.2 ;;\nesac\n")
    fake.chmod(0o755)
    proc = subprocess.run(["bash", str(REPO / "install.sh"), "--yes"], capture_output=True,
                          text=True, check=False, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    if proc.returncode != 0 and "sudo" in proc.stderr:
        pytest.fail("run the installer tests as root (CI does)")
    assert proc.returncode == 1
    assert "Python 3.9.2 is too old" in proc.stderr and "Nothing was changed" in proc.stderr


# ---------------------------------------------------------------- the config step


def _plan(tmp_path: Path, tier: str = "edge", port: int = 8700) -> Plan:
    paths = Paths().under(tmp_path)
    install_command(paths)
    return Plan(tier=tier, tier_reason="test", port=port, extras=("voice",),
                roles=("stt", "tts"), extra_groups=(), paths=paths,
                options=Options(), upgrade=False)


def _config_step(plan: Plan) -> Result:
    result = Result()
    apply._config(plan, REPO, result, lambda _m: None)
    plan.paths.record.parent.mkdir(parents=True, exist_ok=True)
    plan.paths.record.write_text(json.dumps(result.record))
    return result


def test_config_is_written_once_then_left_alone(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    first = _config_step(plan)
    assert any("wrote" in c and "config.yaml" in c for c in first.changes)
    assert not _config_step(plan).changed


def test_a_users_edit_is_kept_without_a_new_file_when_defaults_did_not_change(
        tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    _config_step(plan)
    cfg = plan.paths.config
    cfg.write_text(cfg.read_text().replace("level: info", "level: debug"))
    result = _config_step(plan)
    assert not result.changed and "level: debug" in cfg.read_text()
    assert not cfg.with_name("config.yaml.new").exists()


def test_new_defaults_replace_an_unedited_config(tmp_path: Path) -> None:
    _config_step(_plan(tmp_path))
    result = _config_step(_plan(tmp_path, port=8800))
    assert any("new defaults" in c for c in result.changes)
    assert "port: 8800" in _plan(tmp_path).paths.config.read_text()


def test_new_defaults_beside_an_edited_config_go_to_config_yaml_new(tmp_path: Path) -> None:
    _config_step(_plan(tmp_path))
    cfg = _plan(tmp_path).paths.config
    edited = cfg.read_text().replace("level: info", "level: debug")
    cfg.write_text(edited)
    result = _config_step(_plan(tmp_path, port=8800))
    assert cfg.read_text() == edited
    assert "port: 8800" in cfg.with_name("config.yaml.new").read_text()
    assert any("config.yaml.new" in n for n in result.notes)


def test_a_kept_config_on_another_port_is_waited_for_there(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    plan.paths.config.parent.mkdir(parents=True)
    plan.paths.config.write_text("tools:\n  server_port: 8701\nhttp:\n  # TCP port.\n"
                                 "  port: 9137\nwyoming:\n  port: 10700\n")
    result = _config_step(plan)
    assert result.port == 9137 and "port: 9137" in plan.paths.config.read_text()
    assert _config_step(_plan(tmp_path, port=9137)).port is None  # the plan's own port


def test_source_hash_follows_the_source(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "appliance").mkdir(parents=True)
    (src / "pyproject.toml").write_text("x")
    (src / "appliance" / "a.py").write_text("a = 1\n")
    before = apply.source_hash(src, ("voice",), ())
    assert before == apply.source_hash(src, ("voice",), ())
    assert before != apply.source_hash(src, ("voice", "llm"), ())
    (src / "appliance" / "a.py").write_text("a = 2\n")
    assert before != apply.source_hash(src, ("voice",), ())


# ---------------------------------------------------------------- the cluster key


def test_first_install_creates_the_cluster_key_and_prints_the_join_code(tmp_path: Path) -> None:
    from appliance.security import keys

    plan = _plan(tmp_path)
    result = Result()
    apply._cluster_key(plan, result, lambda _m: None)
    key = keys.read_key(plan.paths.cluster_key)
    assert plan.paths.cluster_key.stat().st_mode & 0o777 == 0o600
    assert any(keys.join_code(key) in n for n in result.notes)
    again = Result()
    apply._cluster_key(plan, again, lambda _m: None)
    assert not again.changed and keys.read_key(plan.paths.cluster_key) == key


def test_join_takes_the_key_from_the_code(tmp_path: Path) -> None:
    from appliance.security import keys

    other = keys.generate_key()
    plan = _plan(tmp_path)
    apply._cluster_key(plan, Result(), lambda _m: None)  # a key of its own first
    joined = Plan(**{**plan.__dict__, "options": Options(join=keys.join_code(other))})
    result = Result()
    apply._cluster_key(joined, result, lambda _m: None)
    assert keys.read_key(plan.paths.cluster_key) == other
    assert any("joined the cluster" in c for c in result.changes)
