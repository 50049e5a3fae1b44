"""apply.uninstall against a temp root: what --uninstall removes, and what only --purge does."""

from __future__ import annotations

from pathlib import Path

from installer import Paths, Result, apply, files


def _installed(root: Path) -> Paths:
    """Everything an install leaves, as files under ``root``."""
    paths = Paths().under(root)
    for f in (paths.command, paths.record, paths.config, paths.cluster_key, paths.models / "x",
              paths.unit, paths.tools_unit, paths.tools_socket, paths.sysusers, paths.tmpfiles,
              paths.default_file,
              paths.cache / "x", paths.logs / "x", paths.tools_state / "x"):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x\n")
    files.link_command(paths, Result())
    return paths


def test_uninstall_stops_the_units_and_keeps_config_state_and_models(
        tmp_path: Path, systemctl_calls: Path) -> None:
    paths = _installed(tmp_path)
    said: list[str] = []
    removed = apply.uninstall(paths, purge=False, say=said.append)
    assert set(removed) == {str(p) for p in (paths.unit, paths.tools_unit, paths.tools_socket,
                                             paths.sysusers, paths.tmpfiles,
                                             paths.command_link, paths.opt)}
    for kept in (paths.config, paths.cluster_key, paths.models / "x", paths.default_file,
                 paths.cache / "x", paths.logs / "x"):
        assert kept.exists(), kept
    assert said[-1] == f"kept {paths.etc}, {paths.state} (state and models): remove them " \
                       "with --purge"
    # Stopped while their unit files still existed, then forgotten by systemd.
    assert systemctl_calls.read_text().splitlines() == [
        "disable --now hybrid-agent-tools.service", "disable --now hybrid-agent.service",
        "disable --now hybrid-agent-tools.socket",
        "daemon-reload", "reset-failed hybrid-agent.service hybrid-agent-tools.service"]


def test_purge_also_removes_config_state_cache_logs_and_defaults(
        tmp_path: Path, systemctl_calls: Path) -> None:
    paths = _installed(tmp_path)
    apply.uninstall(paths, purge=True, say=lambda _m: None)
    for gone in (paths.opt, paths.etc, paths.state, paths.tools_state, paths.cache, paths.logs,
                 paths.default_file, paths.unit, paths.command_link):
        assert not gone.exists() and not gone.is_symlink(), gone
