"""The hybrid-agent command: --version, --help everywhere, status, doctor."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from appliance import __version__, logs
from appliance.cli import COMMANDS, build_parser


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


async def acli(*args: str) -> subprocess.CompletedProcess[str]:
    """cli() off the event loop, so a daemon in this loop can answer it."""
    return await asyncio.to_thread(cli, *args)


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"hybrid-agent {__version__}"


def test_help_on_every_command_explains_it():
    build_parser()
    names = [c[0] for c in COMMANDS]
    assert {"run", "config", "status", "hardware", "doctor", "models"} <= set(names)
    top = cli("--help")
    assert top.returncode == 0
    for name in names:
        assert name in top.stdout
        proc = cli(name, "--help")
        assert proc.returncode == 0, name
        # A description sentence, not just a usage line.
        assert len(proc.stdout.splitlines()) >= 3 and "usage: hybrid-agent" in proc.stdout
    for sub in (("config", "check"), ("config", "defaults"), ("models", "fetch")):
        proc = cli(*sub, "--help")
        assert proc.returncode == 0 and "usage:" in proc.stdout


def test_unknown_command_is_a_usage_error():
    proc = cli("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


async def test_status_of_a_running_daemon(daemon_factory, tmp_path):
    from appliance.security.keys import create_key_file

    key_file = tmp_path / "cluster.key"
    create_key_file(key_file)
    sec = {"cluster_key_file": str(key_file)}
    peer = await daemon_factory(node={"name": "peer-node"}, security=sec)
    d = await daemon_factory(security=sec, discovery={
        "enabled": False, "static_peers": [peer.node_url], "probe_interval_s": 0.5})
    async with asyncio.timeout(60):  # the static peer is probed once it is up
        while True:
            _, data = await d.get_json("/api/status")
            if data["peers"]:
                break
            await asyncio.sleep(0.1)  # polling /api/status for the condition
    proc = await acli("status", "--url", d.url, "--json")
    data = json.loads(proc.stdout)
    assert data["ready"] is True and data["name"] == "test-node"
    proc = await acli("status", "--url", d.url)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.splitlines()[0] == f"test-node  (edge tier, id {data['id']})", out
    fields = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[1:5]}
    assert fields["version"] == __version__
    assert fields["state"].startswith("ready - edge: ready")
    assert re.fullmatch(r"\d\d:\d\d:\d\d", fields["uptime"]), fields
    assert fields["roles"] == (", ".join(data["roles"]) or "-")
    # Every loaded component has its own line with its health.
    assert data["components"], data
    for name in data["components"]:
        assert re.search(rf"^    {re.escape(name)} +ok", out, re.M), (name, out)
    assert "  peers: 1" in out
    # The fingerprint people check their browser's warning against.
    assert re.search(r"^  https     certificate SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$", out,
                     re.M), out
    assert re.search(rf"^    peer-node edge {re.escape(peer.node_url)} trusted (up|down)$", out,
                     re.M), out


def test_hardware_text_says_cores_memory_gpu_arch_python_and_tier():
    proc = cli("hardware")
    assert proc.returncode == 0, proc.stderr
    text = {line.split()[0]: line.split(None, 1)[1] for line in proc.stdout.splitlines()}
    assert set(text) == {"cores", "memory", "gpu", "arch", "python", "tier"}, proc.stdout
    data = json.loads(cli("hardware", "--json").stdout)
    hw = data["hardware"]
    assert text["arch"] == platform.machine() == hw["arch"]
    assert text["python"] == platform.python_version()
    gpus = hw["gpus"]
    assert (text["gpu"] == "none (NVIDIA)") == (not gpus), (text["gpu"], gpus)
    assert text["cores"].startswith(f"{hw['cores']} usable")
    assert text["tier"] == f"{data['tier']}: {data['reason']}"


def test_status_without_a_daemon_says_so():
    from tests.support.daemon import free_port

    proc = cli("status", "--url", f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 1
    assert "no daemon answers" in proc.stderr and "systemctl status hybrid-agent" in proc.stderr


def _doctor_config(tmp_path, models_dir, port) -> str:
    path = tmp_path / "doctor.yaml"
    path.write_text(yaml.safe_dump({
        "node": {"state_dir": str(tmp_path), "models_dir": str(models_dir), "tier": "mid"},
        "http": {"port": port, "host": "127.0.0.1"},
    }))
    return str(path)


def test_doctor_reports_every_check(tmp_path, models_dir, port):
    proc = cli("doctor", "--config", _doctor_config(tmp_path, models_dir, port))
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("      fix:")]
    names = {line.split()[1] for line in lines}
    assert {"python", "systemd", "config", "port", "model:stt", "model:tts", "model:llm",
            "disk", "sound", "clock"} <= names, proc.stdout
    assert all(line.split()[0] in ("OK", "WARN", "FAIL") for line in lines)
    fails = [line for line in lines if line.startswith("FAIL")]
    assert proc.returncode == (1 if fails else 0), proc.stdout
    assert not fails, proc.stdout  # on this box every FAIL-able check passes


def test_doctor_fails_on_missing_models_and_bad_config(tmp_path, port):
    empty = tmp_path / "empty-models"
    empty.mkdir()
    proc = cli("doctor", "--config", _doctor_config(tmp_path, empty, port))
    assert proc.returncode == 1
    assert "FAIL  model:stt" in proc.stdout and "hybrid-agent models fetch" in proc.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("http: {port: -1}\n")
    proc = cli("doctor", "--config", str(bad))
    assert proc.returncode == 1 and "FAIL  config" in proc.stdout and "http.port" in proc.stdout


async def test_doctor_recognises_our_daemon_on_the_port(daemon_factory, tmp_path, models_dir):
    d = await daemon_factory()
    proc = await acli("doctor", "--config", _doctor_config(tmp_path, models_dir, d.port))
    port_line = next(line for line in proc.stdout.splitlines() if " port " in line)
    assert port_line.startswith("OK") and "served by hybrid-agent" in port_line


def test_doctor_flags_a_port_taken_by_someone_else(tmp_path, models_dir):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        proc = cli("doctor", "--config", _doctor_config(tmp_path, models_dir, taken))
    assert proc.returncode == 1
    assert f"FAIL  port       port {taken}" in proc.stdout


@pytest.mark.parametrize("journal", [True, False])
def test_log_format_for_journal_and_terminal(journal, tmp_path):
    """Under journald ($JOURNAL_STREAM names our stderr) with no native socket: a priority
    prefix, no timestamp, and a traceback on the same line as its message."""
    code = ("import logging; from appliance import logs; logs.setup('info'); "
            "logging.getLogger('x').info('hello')\n"
            "try:\n    1/0\nexcept ZeroDivisionError:\n"
            "    logging.getLogger('x').exception('boom')")
    env = {"PATH": "/usr/bin:/bin"}
    err = tmp_path / "stderr"
    with open(err, "wb") as fh:
        if journal:
            st = os.fstat(fh.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        subprocess.run([sys.executable, "-c", code], stderr=fh, env=env, timeout=30, check=True,
                       cwd=Path(__file__).resolve().parents[2])
    lines = err.read_text().splitlines()
    if journal and not Path(logs.JOURNAL_SOCKET).exists():
        assert lines[0] == "<6>x: hello"  # priority prefix, no timestamp of our own
        assert len(lines) == 2 and lines[1].startswith("<3>x: boom \\n Traceback")
    elif journal:
        assert lines == []  # all of it went to journald's socket
    else:
        assert lines[0].endswith("INFO    x: hello") and lines[0][2] == ":"
        assert "Traceback" in lines[2]


def test_journal_handler_sends_a_traceback_as_one_entry(tmp_path):
    """The native protocol over a real datagram socket: one datagram per record, the
    multi-line message length-prefixed, the priority a field of its own."""
    import logging
    import socket
    import struct

    path = str(tmp_path / "journal.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journald:
        journald.bind(path)
        handler = logs.JournalHandler(path)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        log = logging.getLogger("test.journal")
        log.addHandler(handler)
        log.propagate = False
        log.setLevel(logging.INFO)
        try:
            try:
                {}["missing"]
            except KeyError:
                log.exception("lookup failed")
            log.log(logs.NOTICE, "noted")
        finally:
            log.removeHandler(handler)
            handler.close()
        journald.settimeout(5)
        first, second = journald.recv(1 << 20), journald.recv(1 << 20)

    def fields(datagram: bytes) -> dict[str, str]:
        out, pos = {}, 0
        while pos < len(datagram):
            nl = datagram.index(b"\n", pos)
            line = datagram[pos:nl]
            if b"=" in line:
                key, value = line.split(b"=", 1)
                pos = nl + 1
            else:
                key = line
                (size,) = struct.unpack("<Q", datagram[nl + 1:nl + 9])
                value = datagram[nl + 9:nl + 9 + size]
                pos = nl + 9 + size + 1
            out[key.decode()] = value.decode()
        return out

    entry = fields(first)
    assert entry["PRIORITY"] == "3" and entry["LOGGER"] == "test.journal"
    assert entry["MESSAGE"].startswith("test.journal: lookup failed\nTraceback")
    assert "KeyError: 'missing'" in entry["MESSAGE"]
    assert fields(second)["PRIORITY"] == "5" and fields(second)["MESSAGE"].endswith("noted")
