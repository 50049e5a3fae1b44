"""install.sh's choice between the Debian packages and the venv, and the 32-bit refusal."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from installer.detect import find_debs
from installer.plan import Options, make_plan
from tests.installer.test_plan import facts, refused

DEB = "hybrid-agent_0.1.0-1_amd64.deb"
LLM_DEB = "hybrid-agent-llm_0.1.0-1_amd64.deb"


@pytest.mark.parametrize("arch", ["armv7l", "armv6l", "i686"])
def test_a_32_bit_box_is_refused_naming_the_missing_wheels(tmp_path: Path, arch: str) -> None:
    hw = dataclasses.replace(facts(tmp_path).hardware, arch=arch)
    msg = refused(tmp_path, hardware=hw)
    assert f"this is a {arch} box" in msg and "64-bit x86_64 or aarch64" in msg
    assert "CTranslate2" in msg and "onnxruntime" in msg and "no wheels" in msg
    assert ("64-bit Raspberry Pi OS" in msg) == arch.startswith("arm")


def test_aarch64_is_planned(tmp_path: Path) -> None:
    hw = dataclasses.replace(facts(tmp_path).hardware, arch="aarch64")
    assert make_plan(Options(), facts(tmp_path, hardware=hw)).tier == "edge"


def test_find_debs_takes_the_newest_of_this_architecture(tmp_path: Path) -> None:
    for name in (DEB, "hybrid-agent_0.1.0-10_amd64.deb", "hybrid-agent_0.1.0-2_amd64.deb",
                 "hybrid-agent_0.2.0-1_arm64.deb", LLM_DEB, "other_1.0_amd64.deb"):
        (tmp_path / name).write_bytes(b"")
    found = find_debs((tmp_path, tmp_path / "missing"), "amd64")
    assert {k: v.name for k, v in found.items()} == {
        "hybrid-agent": "hybrid-agent_0.1.0-10_amd64.deb", "hybrid-agent-llm": LLM_DEB}


def test_an_edge_box_installs_the_package_when_there_is_one(tmp_path: Path) -> None:
    plan = make_plan(Options(), facts(tmp_path, debs={"hybrid-agent": tmp_path / DEB}))
    assert plan.debs == (tmp_path / DEB,)
    assert f"packages    {DEB} with apt-get: dpkg tracks every file" in plan.describe()
    assert "venv" not in plan.describe()


def test_a_mid_box_takes_both_packages_or_the_venv(tmp_path: Path) -> None:
    both = {"hybrid-agent": tmp_path / DEB, "hybrid-agent-llm": tmp_path / LLM_DEB}
    plan = make_plan(Options(tier="mid"), facts(tmp_path, debs=both))
    assert plan.debs == (tmp_path / DEB, tmp_path / LLM_DEB)
    alone = make_plan(Options(tier="mid"), facts(tmp_path, debs={"hybrid-agent": both[
        "hybrid-agent"]}))
    assert alone.debs == ()
    assert "needs hybrid-agent-llm, and there is no such package" in alone.describe()


def test_no_deb_builds_the_venv(tmp_path: Path) -> None:
    plan = make_plan(Options(no_deb=True), facts(tmp_path, debs={"hybrid-agent": tmp_path / DEB}))
    assert plan.debs == () and "venv" in plan.describe()


def test_a_source_install_over_the_package_is_refused(tmp_path: Path) -> None:
    msg = refused(tmp_path, Options(no_deb=True), dpkg_version="0.1.0-1")
    assert "hybrid-agent 0.1.0-1 is installed as a Debian package" in msg
    assert "apt-get remove hybrid-agent" in msg
