"""installer.detect's probes against real sockets and files."""

from __future__ import annotations

import socket
from pathlib import Path

from installer import Paths, configfile, detect
from tests.installer.conftest import install_command
from tests.support.daemon import free_port


def test_port_busy_sees_a_real_listener() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert detect.port_busy(port)
    assert not detect.port_busy(free_port())


def test_network_problem_names_the_unreachable_index() -> None:
    port = free_port()  # nothing listens there
    why = detect.network_problem(f"http://127.0.0.1:{port}/simple")
    assert why.startswith(f"cannot reach 127.0.0.1:{port}")


def test_network_problem_is_empty_when_the_index_answers() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert detect.network_problem(f"http://127.0.0.1:{s.getsockname()[1]}/simple") == ""


def test_config_port_reads_only_the_http_section(tmp_path: Path) -> None:
    command = install_command(Paths().under(tmp_path))
    cfg = tmp_path / "config.yaml"
    cfg.write_text("tools:\n  server_port: 8701\nhttp:\n  # TCP port.\n  host: 0.0.0.0\n"
                   "  port: 9123\nwyoming:\n  port: 10701\n")
    assert configfile.port(command, cfg) == 9123
    assert configfile.port(command, tmp_path / "absent.yaml") is None
    # No venv yet (a first install): nothing reads it, so nothing is guessed.
    assert configfile.port(tmp_path / "no-venv/bin/hybrid-agent", cfg) is None


def test_read_groups_and_record_tolerate_junk(tmp_path: Path) -> None:
    groups = tmp_path / "group"
    groups.write_text("audio:x:29:\nrender:x:105:\n\n")
    assert detect.read_groups(groups) == {"audio", "render"}
    record = tmp_path / "install.json"
    record.write_text("not json")
    assert detect.read_record(record) == {}
