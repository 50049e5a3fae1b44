"""installer.plan: the preflight refusals and what the plan decides, from hand-made Facts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from appliance import hardware, models, tiers
from installer import Paths, PreflightError
from installer.detect import Facts
from installer.plan import MODEL_SIZES, Options, make_plan

GB = 10**9


def facts(tmp_path: Path, **changes: object) -> Facts:
    hw = hardware.HardwareProfile(cores=2, physical_cores=2, host_cpus=2,
                                  memory_bytes=8 * 2**30, host_memory_bytes=8 * 2**30,
                                  arch="x86_64", python="3.11.2")
    paths = Paths().under(tmp_path)
    base = Facts(paths=paths, hardware=hw, detected=tiers.choose_tier(hw), python=(3, 11, 2),
                 systemd_state="running",
                 disk_free={str(paths.opt): 50 * GB, str(paths.state): 50 * GB},
                 port_busy={8700: False}, groups=frozenset({"audio", "video"}))
    return dataclasses.replace(base, **changes)


def refused(tmp_path: Path, options: Options | None = None, **changes: object) -> str:
    with pytest.raises(PreflightError) as info:
        make_plan(options or Options(), facts(tmp_path, **changes))
    return str(info.value)


def test_not_root_is_refused_with_sudo_named(tmp_path: Path) -> None:
    assert "sudo" in refused(tmp_path, is_root=False)


def test_old_python_is_refused_naming_both_versions(tmp_path: Path) -> None:
    msg = refused(tmp_path, python=(3, 9, 2))
    assert "Python 3.9.2 is too old" in msg and "3.11" in msg


@pytest.mark.parametrize("state", ["", "offline", "starting", "maintenance"])
def test_no_running_systemd_points_at_the_foreground_daemon(tmp_path: Path, state: str) -> None:
    msg = refused(tmp_path, systemd_state=state)
    assert "hybrid-agent run" in msg and "foreground" in msg


def test_degraded_systemd_is_good_enough(tmp_path: Path) -> None:
    assert make_plan(Options(), facts(tmp_path, systemd_state="degraded")).tier == "edge"


def test_no_network_without_wheelhouse_names_the_way_out(tmp_path: Path) -> None:
    msg = refused(tmp_path, network="cannot reach pypi.org:443 (Network is unreachable)")
    assert "no network" in msg and "--wheelhouse" in msg


def test_a_wheelhouse_makes_the_network_unnecessary(tmp_path: Path) -> None:
    plan = make_plan(Options(wheelhouse=tmp_path), facts(tmp_path, network="unreachable"))
    assert f"only the wheels in {tmp_path}" in plan.describe()


def test_a_missing_wheelhouse_dir_is_refused(tmp_path: Path) -> None:
    assert "not a directory" in refused(tmp_path, Options(wheelhouse=tmp_path / "nope"))


def test_a_busy_port_is_refused(tmp_path: Path) -> None:
    msg = refused(tmp_path, Options(port=9000), port_busy={9000: True})
    assert "port 9000 is already in use" in msg and "--port" in msg


def test_a_full_disk_is_refused_with_sizes(tmp_path: Path) -> None:
    paths = Paths().under(tmp_path)
    msg = refused(tmp_path, disk_free={str(paths.opt): 50 * GB, str(paths.state): 100 * 10**6})
    assert msg.startswith("disk full") and str(paths.state) in msg and "100 MB" in msg


def test_edge_plan_has_no_llm_and_says_what_it_does(tmp_path: Path) -> None:
    plan = make_plan(Options(), facts(tmp_path))
    assert plan.tier == "edge" and plan.roles == ("stt", "tts") and plan.extras == ("voice",)
    text = plan.describe()
    for words in ("tier        edge: 2 cores", "hybrid-agent (system user", "whisper-base",
                  "150 MB", "en_US-joe-medium", ":8700/", "hybrid-agent.service",
                  "groups audio, video"):
        assert words in text, f"{words!r} not in\n{text}"
    assert "SmolLM2" not in text and "llama-cpp-python" not in text


def test_mid_plan_fetches_the_llm_and_warns_about_the_build(tmp_path: Path) -> None:
    plan = make_plan(Options(tier="mid", port=8777), facts(tmp_path, port_busy={8777: False}))
    assert plan.roles == ("stt", "tts", "llm") and "llm" in plan.extras
    text = plan.describe()
    assert "chosen with --tier (detection says edge" in text
    assert "SmolLM2-135M-Instruct" in text and "takes minutes" in text and ":8777/" in text


def test_rerun_keeps_the_recorded_tier_and_port(tmp_path: Path) -> None:
    plan = make_plan(Options(), facts(tmp_path, record={"tier": "mid", "port": 8777},
                                      port_busy={8777: False}))
    assert (plan.tier, plan.port, plan.upgrade) == ("mid", 8777, True)
    assert "kept from the last install" in plan.tier_reason


def test_an_existing_configs_port_is_kept(tmp_path: Path) -> None:
    plan = make_plan(Options(), facts(tmp_path, existing_port=8123, port_busy={8123: False}))
    assert plan.port == 8123


def test_model_sizes_match_the_model_catalogue() -> None:
    for role, (name, size) in MODEL_SIZES.items():
        spec = models.DEFAULT_MODELS[role]
        assert (name, size) == (spec.id, spec.size)


def test_the_plan_lists_the_directories_it_creates(tmp_path: Path) -> None:
    plan = make_plan(Options(), dataclasses.replace(facts(tmp_path), paths=Paths(), disk_free={}))
    [line] = [ln for ln in plan.describe().splitlines() if ln.startswith("  directories ")]
    for directory in ("/opt/hybrid-agent", "/etc/hybrid-agent", "/var/lib/hybrid-agent",
                      "/var/cache/hybrid-agent", "/var/log/hybrid-agent"):
        assert f" {directory}," in line + ",", line
