"""Hardware detection on fake /proc and /sys trees, and the tier each implies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance import hardware, tiers

GIB = 1024**3


def make_tree(root: Path, *, cpus: int, mem_gib: float, physical: int | None = None,
              cgroup_cpu_max: str | None = None, cgroup_mem_max: str | None = None,
              cgroup_v1: bool = False) -> Path:
    """A minimal /proc + /sys tree for ``cpus`` logical CPUs and ``mem_gib`` of RAM."""
    physical = physical or cpus
    (root / "proc/self").mkdir(parents=True)
    (root / "sys/devices/system/cpu").mkdir(parents=True)
    (root / "sys/devices/system/cpu/online").write_text(f"0-{cpus - 1}\n")
    blocks = []
    for i in range(cpus):
        blocks.append(f"processor\t: {i}\nphysical id\t: 0\ncore id\t\t: {i % physical}\n")
    (root / "proc/cpuinfo").write_text("\n".join(blocks) + "\n")
    (root / "proc/meminfo").write_text(f"MemTotal:       {int(mem_gib * 1024 * 1024)} kB\n"
                                       "MemFree:        1000 kB\n")
    cg = root / "sys/fs/cgroup"
    if cgroup_v1:
        (root / "proc/self/cgroup").write_text("4:memory:/\n3:cpu,cpuacct:/\n")
        (cg / "cpu,cpuacct").mkdir(parents=True)
        (cg / "memory").mkdir(parents=True)
        quota, period = (cgroup_cpu_max or "-1 100000").split()
        (cg / "cpu,cpuacct/cpu.cfs_quota_us").write_text(quota + "\n")
        (cg / "cpu,cpuacct/cpu.cfs_period_us").write_text(period + "\n")
        (cg / "memory/memory.limit_in_bytes").write_text(
            (cgroup_mem_max or str(9223372036854771712)) + "\n")
        return root
    (root / "proc/self/cgroup").write_text("0::/machine.slice/box.scope\n")
    leaf = cg / "machine.slice/box.scope"
    leaf.mkdir(parents=True)
    (cg / "cgroup.controllers").write_text("cpu memory\n")
    (leaf / "cpu.max").write_text((cgroup_cpu_max or "max 100000") + "\n")
    (leaf / "memory.max").write_text((cgroup_mem_max or "max") + "\n")
    return root


def test_raspberry_pi_class_board_is_edge(tmp_path):
    root = make_tree(tmp_path, cpus=4, mem_gib=7.6)
    hw = hardware.detect(root, machine="aarch64")
    assert (hw.cores, hw.arch) == (4, "aarch64")
    assert round(hw.memory_gib, 1) == 7.6
    choice = tiers.choose_tier(hw)
    assert choice.tier == "edge" and "below mid" in choice.reason


def test_eight_core_desktop_is_mid(tmp_path):
    root = make_tree(tmp_path, cpus=16, physical=8, mem_gib=31.2)
    hw = hardware.detect(root, machine="x86_64")
    assert hw.cores == 16 and hw.physical_cores == 8
    assert tiers.choose_tier(hw).tier == "mid"


def test_thirty_two_core_server_is_core(tmp_path):
    root = make_tree(tmp_path, cpus=32, mem_gib=62.8)
    hw = hardware.detect(root, machine="x86_64")
    choice = tiers.choose_tier(hw)
    assert choice.tier == "core" and "32 cores" in choice.reason


def test_gpu_box_is_core(tmp_path):
    root = make_tree(tmp_path, cpus=8, mem_gib=31)
    smi = "NVIDIA GeForce RTX 4090, 24564\n"
    hw = hardware.detect(root, machine="x86_64", nvidia_smi=lambda: smi)
    assert hw.gpus[0].name == "NVIDIA GeForce RTX 4090"
    assert round(hw.gpu_memory_gib) == 24
    choice = tiers.choose_tier(hw)
    assert choice.tier == "core" and "GPU" in choice.reason


def test_small_gpu_does_not_make_a_core(tmp_path):
    root = make_tree(tmp_path, cpus=4, mem_gib=16)
    hw = hardware.detect(root, machine="x86_64", nvidia_smi=lambda: "NVIDIA T400, 4096\n")
    assert tiers.choose_tier(hw).tier == "mid"


def test_cgroup_limited_container_on_a_big_host_is_edge(tmp_path):
    # A 32-core 64 GiB host, but the container may use 2 CPUs and 4 GiB.
    root = make_tree(tmp_path, cpus=32, mem_gib=64, cgroup_cpu_max="200000 100000",
                     cgroup_mem_max=str(4 * GIB))
    hw = hardware.detect(root, machine="x86_64")
    assert hw.host_cpus == 32 and hw.cores == 2
    assert hw.memory_bytes == 4 * GIB and hw.host_memory_bytes >= 64 * GIB - 1
    assert "cgroup" in hw.cpu_limit and "cgroup" in hw.memory_limit
    assert tiers.choose_tier(hw).tier == "edge"


def test_cgroup_v1_limits(tmp_path):
    root = make_tree(tmp_path, cpus=32, mem_gib=64, cgroup_v1=True,
                     cgroup_cpu_max="650000 100000", cgroup_mem_max=str(20 * GIB))
    hw = hardware.detect(root, machine="x86_64")
    assert hw.cores == 7 and hw.memory_bytes == 20 * GIB
    assert tiers.choose_tier(hw).tier == "mid"


def test_affinity_mask_limits_cores(tmp_path):
    root = make_tree(tmp_path, cpus=32, mem_gib=64)
    hw = hardware.detect(root, machine="x86_64", affinity=8)
    assert hw.cores == 8 and "affinity" in hw.cpu_limit
    assert tiers.choose_tier(hw).tier == "mid"


def test_this_machine_detects_sanely():
    hw = hardware.detect()
    assert 1 <= hw.physical_cores <= hw.cores <= hw.host_cpus
    assert hw.memory_bytes > 256 * 1024 * 1024
    assert hw.python.startswith("3.")


@pytest.mark.parametrize("as_json", [True, False])
def test_hardware_command(as_json):
    args = [sys.executable, "-m", "appliance.cli", "hardware"] + (["--json"] if as_json else [])
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    if as_json:
        data = json.loads(proc.stdout)
        assert data["tier"] in ("edge", "mid", "core") and data["reason"]
        assert data["hardware"]["cores"] >= 1
    else:
        assert "tier " in proc.stdout and "cores " in proc.stdout
