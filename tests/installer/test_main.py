"""The installer's main (`python3 -m installer`, what install.sh hands over to) on this box:
--join, no systemd, a full disk, with detect's real probes."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from installer import Paths
from installer.__main__ import main
from installer.detect import Facts, detect
from tests.support.daemon import free_port

REPO = Path(__file__).resolve().parents[2]
NOTHING_CHANGED = "Nothing was changed."
TINY_FS = "1m"


def running_systemd(paths: Paths, ports: list[int], *, need_network: bool,
                    deb_dirs: tuple[Path, ...] = ()) -> Facts:
    """STAND-IN for a box with systemd as PID 1 (this one has none): the real detect,
    with only systemd's answer replaced."""
    return dataclasses.replace(detect(paths, ports, need_network=need_network,
                                      deb_dirs=deb_dirs), systemd_state="running")


def _offline_args(tmp_path: Path) -> list[str]:
    """--dry-run from an (empty) wheelhouse, so nothing probes the real package index."""
    wheelhouse = tmp_path / "wheels"
    wheelhouse.mkdir(exist_ok=True)
    return ["--dry-run", "--wheelhouse", str(wheelhouse), "--port", str(free_port())]


def test_a_bad_join_code_is_refused_naming_join(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert main(["--join", "HA1-NOPE", "--dry-run"], paths=Paths().under(root)) == 1
    err = capsys.readouterr().err
    assert err.startswith("install.sh: --join: ") and "HA1-" in err
    assert err.rstrip().endswith(NOTHING_CHANGED)
    assert not root.exists()


def test_a_valid_join_code_makes_the_plan_write_that_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pair = subprocess.run([sys.executable, "-m", "appliance.cli", "pair", "--init",
                           "--key-file", str(tmp_path / "first-box.key")],
                          capture_output=True, text=True, check=True, timeout=60)
    code = pair.stdout.strip()
    assert code.startswith("HA1-")
    paths = Paths().under(tmp_path / "root")
    rc = main(["--join", code, *_offline_args(tmp_path)], paths=paths, probe=running_systemd)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert f"  cluster key {paths.cluster_key} (written from the join code)" in out
    assert out.rstrip().endswith("dry run: nothing was changed")
    assert not paths.cluster_key.exists()


def test_without_systemd_the_installer_refuses_and_points_at_the_foreground(
        tmp_path: Path) -> None:
    # A private /run hides systemd from systemctl on any box, so the real
    # `systemctl is-system-running` answers "offline" here even where systemd is PID 1.
    script = 'mount -t tmpfs tmpfs /run && exec "$@"'
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
         sys.executable, "-m", "installer", *_offline_args(tmp_path)],
        capture_output=True, text=True, check=False, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr.startswith("install.sh: systemd is offline, so there is no service")
    assert "`hybrid-agent run`" in proc.stderr and "foreground" in proc.stderr
    assert proc.stderr.rstrip().endswith(NOTHING_CHANGED)
    assert proc.stdout == ""  # refused before the plan


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, unmounted afterwards."""
    where = tmp_path / "tiny"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TINY_FS}", "tmpfs", str(where)],
                   check=True, timeout=30)
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True, timeout=30)


def test_detect_measures_free_disk_where_the_install_goes(tiny_fs: Path) -> None:
    paths = Paths().under(tiny_fs)
    facts = detect(paths, [free_port()], need_network=False)
    # /opt/hybrid-agent and /var/lib/hybrid-agent do not exist yet: their nearest parent counts.
    assert set(facts.disk_free) == {str(paths.opt), str(paths.state)}
    for free in facts.disk_free.values():
        assert 0 < free <= 2**20


def test_a_full_disk_is_refused_naming_the_directory(
        tmp_path: Path, tiny_fs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = Paths().under(tiny_fs)
    rc = main(_offline_args(tmp_path), paths=paths, probe=running_systemd)
    err = capsys.readouterr().err
    assert rc == 1
    assert err.startswith(f"install.sh: disk full: {paths.opt} needs about ")
    assert "the filesystem has 1 MB" in err and err.rstrip().endswith(NOTHING_CHANGED)
    assert os.listdir(tiny_fs) == []
