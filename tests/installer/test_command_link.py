"""The `hybrid-agent` command on PATH: a symlink the installer makes, keeps and removes."""

from __future__ import annotations

import os
from pathlib import Path

from installer import Paths, Result, apply, files
from installer.plan import Options, Plan


def _paths(tmp_path: Path) -> Paths:
    paths = Paths().under(tmp_path)
    paths.command.parent.mkdir(parents=True)
    paths.command.write_text("#!/bin/sh\n")
    paths.command.chmod(0o755)
    return paths


def test_the_command_is_linked_into_usr_local_bin_once(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    assert paths.command_link == tmp_path / "usr/local/bin/hybrid-agent"
    first = Result()
    files.link_command(paths, first)
    assert paths.command_link.is_symlink()
    assert os.readlink(paths.command_link) == str(tmp_path / "opt/hybrid-agent/venv/bin/"
                                                              "hybrid-agent")
    assert first.changes == [f"linked {paths.command_link} -> {paths.command}"]
    again = Result()
    files.link_command(paths, again)
    assert not again.changed and not again.notes


def test_a_stale_symlink_is_pointed_at_the_venv(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    paths.command_link.parent.mkdir(parents=True)
    paths.command_link.symlink_to(tmp_path / "old-venv/bin/hybrid-agent")
    result = Result()
    files.link_command(paths, result)
    assert os.readlink(paths.command_link) == str(paths.command) and result.changed


def test_a_file_that_is_not_a_symlink_is_kept_with_a_note(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    paths.command_link.parent.mkdir(parents=True)
    paths.command_link.write_text("#!/bin/sh\necho the user's own\n")
    result = Result()
    files.link_command(paths, result)
    assert paths.command_link.read_text() == "#!/bin/sh\necho the user's own\n"
    assert not result.changed
    assert len(result.notes) == 1 and "not a symlink" in result.notes[0]
    assert str(paths.command) in result.notes[0]


def test_uninstall_removes_the_link_but_not_a_users_file(tmp_path: Path,
                                                         systemctl_calls: Path) -> None:
    paths = _paths(tmp_path)
    files.link_command(paths, Result())
    removed = apply.uninstall(paths, purge=False, say=lambda _m: None)
    assert str(paths.command_link) in removed
    assert not paths.command_link.is_symlink() and not paths.opt.exists()

    mine = _paths(tmp_path / "again")
    mine.command_link.parent.mkdir(parents=True)
    mine.command_link.write_text("mine\n")
    assert str(mine.command_link) not in apply.uninstall(mine, purge=False,
                                                         say=lambda _m: None)
    assert mine.command_link.read_text() == "mine\n"


def test_the_plan_shows_the_link() -> None:
    plan = Plan(tier="edge", tier_reason="test", port=8700, extras=("voice",),
                roles=("stt", "tts"), extra_groups=(), paths=Paths(), options=Options(),
                upgrade=False)
    assert ("  command     /usr/local/bin/hybrid-agent -> /opt/hybrid-agent/venv/bin/"
            "hybrid-agent") in plan.describe()
