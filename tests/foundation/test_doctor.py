"""`hybrid-agent doctor` FAIL and WARN paths on real conditions; FAIL means exit status 1.

(A port taken by another program, an invalid config and missing models are in
test_cli.py.)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.foundation.test_cli import cli


def doctor(tmp_path: Path, *, state_dir: Path, models_dir: Path, port: int):
    path = tmp_path / "doctor.yaml"
    path.write_text(yaml.safe_dump({
        "node": {"state_dir": str(state_dir), "models_dir": str(models_dir), "tier": "mid"},
        "http": {"port": port, "host": "127.0.0.1"},
    }))
    proc = cli("doctor", "--config", str(path))
    lines = [line for line in proc.stdout.splitlines() if not line.startswith("      fix:")]
    by_name = {line.split()[1]: line for line in lines}
    return proc, by_name


def test_corrupt_and_truncated_models_fail(tmp_path, models_dir, port):
    broken = tmp_path / "models"
    (broken / "piper").mkdir(parents=True)
    (broken / "llm").mkdir()
    (broken / "whisper-base").symlink_to(models_dir / "whisper-base")  # intact
    voice = models_dir / "piper" / "en_US-joe-medium.onnx"
    (broken / "piper" / "en_US-joe-medium.onnx.json").symlink_to(voice.with_suffix(".onnx.json"))
    corrupt = broken / "piper" / voice.name
    shutil.copyfile(voice, corrupt)
    with open(corrupt, "r+b") as fh:  # same size, one byte changed: only the hash can tell
        fh.seek(voice.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    gguf = next((models_dir / "llm").glob("*.gguf"))
    (broken / "llm" / gguf.name).write_bytes(gguf.read_bytes()[:4096])  # a cut-off download

    proc, by_name = doctor(tmp_path, state_dir=tmp_path, models_dir=broken, port=port)
    assert proc.returncode == 1, proc.stdout
    assert by_name["model:stt"].startswith("OK"), proc.stdout
    assert by_name["model:tts"].startswith("FAIL") and "has sha256" in by_name["model:tts"]
    assert by_name["model:llm"].startswith("FAIL")
    assert "is 4096 bytes, expected" in by_name["model:llm"], proc.stdout
    assert "fix: sudo hybrid-agent models fetch --role tts" in proc.stdout


def test_low_disk_fails_and_a_tight_disk_warns(tmpfs, tmp_path, models_dir, port):
    tiny = tmpfs("16m")
    proc, by_name = doctor(tmp_path, state_dir=tiny, models_dir=models_dir, port=port)
    assert by_name["disk"].startswith("FAIL") and f"GiB free under {tiny}" in by_name["disk"]
    assert proc.returncode == 1, proc.stdout

    tight = tmpfs("3g")  # tmpfs reserves nothing: 3 GiB free, under the 5 GiB comfort line
    proc, by_name = doctor(tmp_path, state_dir=tight, models_dir=models_dir, port=port)
    assert by_name["disk"].startswith("WARN") and "3.0 GiB free" in by_name["disk"], proc.stdout
    # WARN alone is not a failure: with nothing FAILing the exit status is 0.
    assert not any(line.startswith("FAIL") for line in by_name.values()), proc.stdout
    assert proc.returncode == 0, proc.stdout
