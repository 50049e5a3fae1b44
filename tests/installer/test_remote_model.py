"""llm.model from the network (hf://OWNER/REPO/FILE.gguf@SHA256, https://…#sha256=…): fetched
with progress from a local HTTP server standing in for the hub, verified, refused when the hash
differs; the packaged default serves while it cannot be fetched; a daemon loads the fetched
model and answers with it."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance import config as config_mod
from appliance import remote_model
from appliance.models import DEFAULT_MODELS, llm_model_note
from tests.installer.conftest import install_command
from tests.support.daemon import free_port

REPO = "acme/tiny"


class Hub(http.server.ThreadingHTTPServer):
    """Hand-written stand-in for the model hub: serves files of ``root`` under
    /OWNER/REPO/resolve/main/FILE, as the real hub lays them out, and counts requests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _HubHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _HubHandler(http.server.BaseHTTPRequestHandler):
    server: Hub

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        prefix = f"/{REPO}/resolve/main/"
        path = self.server.root / self.path[len(prefix):]
        if not self.path.startswith(prefix) or not path.is_file():
            self.send_error(404, "Entry not found")
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    root = tmp_path / "hub"
    root.mkdir()
    server = Hub(root)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def models_cli(hub_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYBRID_AGENT_")}
    env["HF_ENDPOINT"] = hub_url
    return subprocess.run([sys.executable, "-m", "appliance.cli", "models", *args],
                          capture_output=True, text=True, timeout=300, check=False, env=env)


def config_file(tmp: Path, models: Path, model: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(f"node:\n  tier: mid\n  models_dir: {models}\nllm:\n  model: '{model}'\n")
    return path


@pytest.fixture
def default_llm(tmp_path: Path, models_dir: Path) -> Path:
    """A models dir holding the packaged default LLM (a hard link into the cache)."""
    spec = DEFAULT_MODELS["llm"]
    dest = tmp_path / "models"
    (dest / spec.subdir).mkdir(parents=True)
    for f in spec.files:
        os.link(models_dir / spec.subdir / f.dest, dest / spec.subdir / f.dest)
    return dest


def test_sources_are_parsed_and_bad_ones_named() -> None:
    digest = "ab" * 32
    m = remote_model.parse(f"hf://acme/tiny/model-Q4.gguf@{digest}", hub="http://hub")
    assert m.url == "http://hub/acme/tiny/resolve/main/model-Q4.gguf"
    assert m.filename == "model-Q4.gguf" and m.sha256 == digest
    m = remote_model.parse(f"https://example.org/x/y.gguf#sha256={digest.upper()}")
    assert m.url == "https://example.org/x/y.gguf" and m.sha256 == digest
    for bad, says in [("hf://acme/tiny/model.gguf", "SHA-256"),
                      (f"hf://acme/model.gguf@{digest}", "OWNER/REPO/FILE"),
                      (f"hf://acme/tiny/model.bin@{digest}", ".gguf"),
                      ("https://example.org/y.gguf#md5=00", "SHA-256"),
                      (f"hf://acme/../x.gguf@{digest}", "OWNER/REPO/FILE")]:
        with pytest.raises(remote_model.RemoteModelError, match=says.replace(".", r"\.")):
            remote_model.parse(bad)


def test_fetch_shows_progress_verifies_and_places_the_file(hub: Hub, tmp_path: Path,
                                                           default_llm: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (hub.root / "model.gguf").write_bytes(data)
    source = f"hf://{REPO}/model.gguf@{sha(data)}"
    cfg_path = config_file(tmp_path, default_llm, source)
    proc = models_cli(hub.url, "fetch", "--role", "llm", "--config", str(cfg_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"llm: fetching model.gguf from {hub.url}/{REPO}/resolve/main/model.gguf (3 MB)" \
        in proc.stdout
    assert "verified (3 MB)" in proc.stdout
    placed = remote_model.parse(source).local_path(default_llm)
    assert placed.read_bytes() == data and not list(placed.parent.glob("*.part"))
    cfg = config_mod.load(cfg_path, env={})
    assert cfg.llm_model_path == placed and llm_model_note(cfg) is None
    # Fetched again: already there, no second download.
    proc = models_cli(hub.url, "fetch", "--role", "llm", "--config", str(cfg_path))
    assert proc.returncode == 0 and "already present and valid" in proc.stdout
    assert len(hub.requests) == 1


def test_a_file_with_another_hash_is_refused_and_nothing_is_placed(
        hub: Hub, tmp_path: Path, default_llm: Path) -> None:
    (hub.root / "model.gguf").write_bytes(b"GGUF not the promised file")
    source = f"hf://{REPO}/model.gguf@{'0' * 64}"
    proc = models_cli(hub.url, "fetch", "--role", "llm",
                      "--config", str(config_file(tmp_path, default_llm, source)))
    assert proc.returncode == 1
    assert "not the 0000000000000000... the source names: refused" in proc.stderr
    assert not (default_llm / "llm" / "remote").exists() or \
        not list((default_llm / "llm" / "remote").iterdir())


def test_an_unreachable_hub_leaves_the_packaged_default_in_use(
        hub: Hub, tmp_path: Path, default_llm: Path) -> None:
    source = f"hf://{REPO}/missing.gguf@{'1' * 64}"
    cfg_path = config_file(tmp_path, default_llm, source)
    proc = models_cli(hub.url, "fetch", "--role", "llm", "--config", str(cfg_path))
    assert proc.returncode == 3
    assert "HTTP 404" in proc.stderr and "stays in use" in proc.stderr
    closed = f"http://127.0.0.1:{free_port()}"
    proc = models_cli(closed, "fetch", "--role", "llm", "--config", str(cfg_path))
    assert proc.returncode == 3 and "refused" in proc.stderr.lower()
    cfg = config_mod.load(cfg_path, env={})
    assert cfg.llm_model_path == DEFAULT_MODELS["llm"].path(default_llm)
    note = llm_model_note(cfg)
    assert note is not None and "using the packaged default" in note


@pytest.mark.model
async def test_a_daemon_answers_with_the_model_fetched_from_the_hub(
        hub: Hub, tmp_path: Path, default_llm: Path, models_dir: Path,
        daemon_factory: Callable[..., Any]) -> None:
    gguf = DEFAULT_MODELS["llm"].path(models_dir)
    os.link(gguf, hub.root / "served-from-hub.gguf")
    source = f"hf://{REPO}/served-from-hub.gguf@{DEFAULT_MODELS['llm'].files[0].sha256}"
    proc = models_cli(hub.url, "fetch", "--role", "llm",
                      "--config", str(config_file(tmp_path, default_llm, source)))
    assert proc.returncode == 0, proc.stderr
    daemon = await daemon_factory(node={"models_dir": str(default_llm)},
                                  llm={"mode": "local", "model": source, "threads": 2,
                                       "slots": 1, "context": 1024})
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{daemon.url}/v1/models") as r:
            ids = [m["id"] for m in (await r.json())["data"]]
        async with s.post(f"{daemon.url}/v1/chat/completions", json={
                "model": "default", "max_tokens": 8,
                "messages": [{"role": "user", "content": "Say hi."}]}) as r:
            assert r.status == 200
            answer = (await r.json())["choices"][0]["message"]["content"]
    assert any("served-from-hub" in i for i in ids), ids
    assert answer.strip()


def test_the_installer_fetches_a_kept_configs_remote_model_or_says_the_default_serves(
        hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from installer.apply import Result, _remote_llm
    from installer.plan import Options, make_plan
    from tests.installer.test_plan import facts

    plan = make_plan(Options(tier="mid"), facts(tmp_path))
    install_command(plan.paths)
    plan.paths.config.parent.mkdir(parents=True)
    data = os.urandom(4096)
    (hub.root / "big.gguf").write_bytes(data)
    plan.paths.config.write_text(f"llm:\n  model: 'hf://{REPO}/big.gguf@{sha(data)}'\n")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    said: list[str] = []

    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nobody there
    result = Result()
    _remote_llm(plan, result, said.append)
    assert any("the packaged default model serves until `hybrid-agent models fetch "
               "--role llm` succeeds" in n for n in result.notes), result.notes
    assert said == ["models: llm.model not fetched; the packaged default model serves for now"]

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    result = Result()
    _remote_llm(plan, result, said.append)
    assert result.changes == ["llm.model fetched"] and not result.notes
    assert len(list((plan.paths.models / "llm" / "remote").glob("*-big.gguf"))) == 1
