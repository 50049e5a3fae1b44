"""CPU features as the inference libraries read them (issue 21): parsing, fake trees, doctor."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from appliance import config as config_mod
from appliance import doctor, hardware

X86 = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 avx512f avx512bw amx_int8

processor\t: 1
flags\t\t: fpu
"""
# A Raspberry Pi 4 (Cortex-A72) under a 64-bit kernel.
PI4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd08

Hardware\t: BCM2835
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""


def tree(root: Path, cpuinfo: str | None, possible: str | None = "0-3\n") -> Path:
    (root / "proc").mkdir(parents=True)
    (root / "sys/devices/system/cpu").mkdir(parents=True)
    if cpuinfo is not None:
        (root / "proc/cpuinfo").write_text(cpuinfo)
    if possible is not None:
        (root / "sys/devices/system/cpu/possible").write_text(possible)
    return root


def test_x86_flags_and_model_come_from_the_first_processor(tmp_path: Path) -> None:
    cpu = hardware.cpu_features(tree(tmp_path, X86), machine="x86_64")
    assert cpu.problem == "" and cpu.model == "Intel(R) Xeon(R) Processor"
    assert cpu.notable == ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
                           "amx_int8")
    assert cpu.topology_cpus == 4
    assert cpu.summary().startswith("x86_64 Intel(R) Xeon(R) Processor: sse4_2 avx avx2")


def test_a_pi4_lists_its_neon(tmp_path: Path) -> None:
    cpu = hardware.cpu_features(tree(tmp_path, PI4), machine="aarch64")
    assert cpu.problem == "" and cpu.notable == ("asimd",)
    assert "asimd" in cpu.to_dict()["notable"]


def test_a_hidden_cpuinfo_is_a_problem_that_says_what_follows(tmp_path: Path) -> None:
    cpu = hardware.cpu_features(tree(tmp_path, None), machine="aarch64")
    assert cpu.problem.startswith("cannot read /proc/cpuinfo")
    assert "fall back to generic kernels" in cpu.problem
    assert cpu.summary().startswith("aarch64: cannot read /proc/cpuinfo")


def test_a_hidden_topology_is_a_problem_too(tmp_path: Path) -> None:
    cpu = hardware.cpu_features(tree(tmp_path, X86, possible=None), machine="x86_64")
    assert "/sys/devices/system/cpu/possible" in cpu.problem


def test_this_box_reads_its_own(tmp_path: Path) -> None:
    cpu = hardware.cpu_features()
    assert cpu.problem == "" and cpu.flags and cpu.topology_cpus >= 1


# ---------------------------------------------------------------- doctor


class _Status(BaseHTTPRequestHandler):
    """STAND-IN for a daemon's /api/status: only the ``cpu`` part the doctor reads."""

    cpu: dict[str, object] = {}

    def do_GET(self) -> None:
        body = json.dumps({"cpu": self.cpu}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def daemon_port() -> Iterator[tuple[int, type[_Status]]]:
    handler = type("Handler", (_Status,), {"cpu": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()
    thread.join()


def _config(port: int) -> config_mod.Config:
    return config_mod.build({"http": {"port": port}}, env={}, hostname="box")


def test_doctor_reports_what_the_service_sees(daemon_port, tmp_path: Path) -> None:
    port, handler = daemon_port
    handler.cpu = hardware.cpu_features(tree(tmp_path, X86), machine="x86_64").to_dict()
    r = doctor.check_service_cpu(_config(port))
    assert r.level == "OK" and r.message.startswith("the service sees x86_64 Intel")


def test_doctor_warns_when_the_unit_hides_cpuinfo(daemon_port, tmp_path: Path) -> None:
    port, handler = daemon_port
    handler.cpu = hardware.cpu_features(tree(tmp_path, None), machine="aarch64").to_dict()
    r = doctor.check_service_cpu(_config(port))
    assert r.level == "WARN" and "cannot read /proc/cpuinfo" in r.message
    assert "ProcSubset=pid" in r.fix


def test_doctor_reads_its_own_view_too() -> None:
    r = doctor.check_cpu()
    assert r.level == "OK" and r.name == "cpu"
