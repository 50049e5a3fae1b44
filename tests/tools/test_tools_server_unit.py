"""`hybrid-agent tools-server` (hybrid-agent-tools.service) takes shell and python when the
main daemon's own sandbox cannot create namespaces, as under the hardened main unit."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from appliance.security.keys import create_key_file
from appliance.security.signing import Signer
from tests.support.daemon import free_port
from tests.support.notify import NotifySocket

READY_TIMEOUT_S = 60.0


@pytest.fixture
async def tools_server(tmp_path: Path) -> AsyncIterator[tuple[int, Path]]:
    """A real `hybrid-agent tools-server` process; (its port, the cluster key file)."""
    key_file = tmp_path / "cluster.key"
    create_key_file(key_file)
    port = free_port()
    cfg = {"node": {"state_dir": str(tmp_path / "tools-state"), "tier": "core"},
           "logging": {"level": "debug"}, "security": {"cluster_key_file": str(key_file)},
           "tools": {"server_port": port}}
    (tmp_path / "tools.yaml").write_text(yaml.safe_dump(cfg))
    notify = NotifySocket(tmp_path / "tools-notify.sock")
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
    log = open(tmp_path / "tools-server.log", "wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance.cli", "tools-server", "--config",
        str(tmp_path / "tools.yaml"), env=env, stdout=log, stderr=asyncio.subprocess.STDOUT)
    try:
        await notify.wait_for("READY=1", READY_TIMEOUT_S)
        yield port, key_file
    finally:
        proc.terminate()
        await proc.wait()
        log.close()
        notify.close()


async def test_the_daemon_hands_heavy_tools_to_the_tools_server(
        daemon_factory: Callable[..., Any], tools_server: tuple[int, Path]) -> None:
    port, key_file = tools_server
    key = key_file.read_bytes()
    # /bin/false as bwrap: the sandbox cannot start here, as inside the hardened main unit.
    main = await daemon_factory(
        node={"tier": "core"}, security={"cluster_key_file": str(key_file)},
        tools={"serve": True, "server_port": port, "enabled": ["calculator", "shell"],
               "sandbox": {"bwrap": "/bin/false"}})
    status, info = await main.get_json("/api/status")
    assert status == 200
    assert info["components"]["tools"]["delegated_to"] == f"http://127.0.0.1:{port}"
    _, listing = await main.get_json("/api/tools")
    where = {t["name"]: t["where"] for t in listing["served"]}
    assert where["shell"] == f"http://127.0.0.1:{port}" and where["calculator"] == "local"

    body = b'{"arguments": {"command": "hostname; id -u"}}'
    _, health = await main.get_json("/health")
    headers = {"Content-Type": "application/json",
               **Signer(key).sign_headers("POST", "/api/tools/shell", body,
                                          receiver=health["id"])}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{main.url}/api/tools/shell", data=body, headers=headers) as r:
            assert r.status == 200
            result = await r.json()
        assert result["ok"] is True, result
        host, uid = result["result"]["stdout"].split()
        assert host == "sandbox" and int(uid) != 0
        # The tools-server itself refuses unsigned callers, even from loopback.
        async with s.post(f"http://127.0.0.1:{port}/api/tools/shell", data=body,
                          headers={"Content-Type": "application/json"}) as r:
            assert r.status == 401


async def test_without_a_tools_server_the_heavy_tools_are_withdrawn(
        daemon_factory: Callable[..., Any], tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    create_key_file(key_file)
    main = await daemon_factory(
        node={"tier": "core"}, security={"cluster_key_file": str(key_file)},
        tools={"serve": True, "sandbox_fallback": "withdraw", "enabled": ["calculator", "shell"],
               "sandbox": {"bwrap": "/bin/false"}})
    _, info = await main.get_json("/api/status")
    assert "bubblewrap cannot create its sandbox" in info["components"]["tools"]["problem"]
    _, listing = await main.get_json("/api/tools")
    assert [t["name"] for t in listing["served"]] == ["calculator"]
    assert [t["name"] for t in listing["tools"]] == ["calculator"]


async def test_the_tools_server_takes_its_socket_and_key_from_systemd(tmp_path: Path) -> None:
    """As hybrid-agent-tools.socket starts it (issue 15, item 8): the listening socket
    comes as $LISTEN_FDS (systemd-socket-activate makes it, as systemd does) and the key
    from $CREDENTIALS_DIRECTORY (LoadCredential=); the config's key path is not readable."""
    creds = tmp_path / "creds"
    creds.mkdir()
    create_key_file(creds / "cluster.key")
    key = (creds / "cluster.key").read_bytes()
    port = free_port()
    cfg = {"node": {"state_dir": str(tmp_path / "tools-state"), "tier": "core"},
           "logging": {"level": "debug"},
           "security": {"cluster_key_file": str(tmp_path / "unreadable" / "cluster.key")},
           "tools": {"server_port": free_port()}}  # not where it listens: the socket decides
    (tmp_path / "tools.yaml").write_text(yaml.safe_dump(cfg))
    log = open(tmp_path / "tools-server.log", "wb")
    env = {**os.environ, "CREDENTIALS_DIRECTORY": str(creds),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = await asyncio.create_subprocess_exec(
        "systemd-socket-activate", "-l", f"127.0.0.1:{port}", "-E", "CREDENTIALS_DIRECTORY",
        "-E", "PYTHONPATH", sys.executable, "-m",
        "appliance.cli", "tools-server", "--config", str(tmp_path / "tools.yaml"), env=env,
        stdout=log, stderr=asyncio.subprocess.STDOUT)
    try:
        for _ in range(100):  # until systemd-socket-activate listens
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.1)
        body = b'{"arguments": {"command": "echo hi"}}'
        async with aiohttp.ClientSession() as s:
            # The first connection starts it; the request waits in the socket's backlog.
            # (A signed request made before the server started would be refused as made
            # before its start, a replay for all it knows: the client signs again.)
            async with s.get(f"http://127.0.0.1:{port}/health",
                             timeout=aiohttp.ClientTimeout(total=READY_TIMEOUT_S)) as r:
                node_id = (await r.json())["id"]
            headers = {"Content-Type": "application/json",
                       **Signer(key).sign_headers("POST", "/api/tools/shell", body,
                                                  receiver=node_id)}
            async with s.post(f"http://127.0.0.1:{port}/api/tools/shell", data=body,
                              headers=headers,
                              timeout=aiohttp.ClientTimeout(total=READY_TIMEOUT_S)) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["result"]["stdout"] == "hi\n"
    finally:
        proc.terminate()
        await proc.wait()
        log.close()
    log_text = (tmp_path / "tools-server.log").read_text()
    assert f"listening on http(s)://127.0.0.1:{port}/" in log_text
