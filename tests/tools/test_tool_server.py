"""RemoteToolProxy drives a real tool server in another process; unsigned callers get 401."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from appliance.net.peer import PeerClient
from appliance.security.keys import create_key_file, generate_key
from appliance.security.signing import Signer
from appliance.tools.base import invoke
from appliance.tools.calculator import Calculator
from appliance.tools.python_runner import PythonRunner
from appliance.tools.remote import RemoteToolProxy
from appliance.tools.shell import Shell
from tests.support.nodelink import node_tls

JSON = {"Content-Type": "application/json"}


def sign_with(key: bytes):
    """A client-side signer over ``key`` (what the security component's sign_headers does)."""
    signer = Signer(key)

    def sign(method, path, body, *, receiver, headers=None):
        return signer.sign_headers(method, path, body, receiver=receiver, headers=headers)

    return sign

CALL_TIMEOUT_S = 30.0
FEED_TIMEOUT_S = 60.0
POLL_S = 0.05


async def start_core(daemon_factory: Callable[..., Any], tmp_path: Path) -> tuple[Any, bytes]:
    key_file = tmp_path / "core.key"
    key = create_key_file(key_file)
    core = await daemon_factory(
        node={"tier": "core"}, tools={"serve": True, "enabled": ["calculator", "clock"]},
        security={"cluster_key_file": str(key_file)})
    return core, key


async def test_remote_tool_proxy_drives_a_real_tool_server(
        daemon_factory: Callable[..., Any], tmp_path: Path) -> None:
    core, key = await start_core(daemon_factory, tmp_path)
    status, listing = await core.get_json("/api/tools")
    assert status == 200
    assert {t["name"] for t in listing["served"]} == {"calculator", "clock", "shell", "python"}

    # Over the node link, as an edge reaches a core: the core's id comes from its certificate.
    ours = node_tls(tmp_path / "ours", key)
    client = PeerClient(lambda: core.node_url, sign_with(key), node_tls=lambda: ours)
    try:
        calc = RemoteToolProxy(Calculator, client)
        obs = await invoke(calc, {"expression": "12*7"}, CALL_TIMEOUT_S)
        assert obs == {"ok": True, "result": {"expression": "12*7", "value": 84}}
        shell = RemoteToolProxy(Shell, client)
        obs = await invoke(shell, {"command": "echo from-the-core; hostname"}, CALL_TIMEOUT_S)
        assert obs["ok"] and obs["result"]["stdout"] == "from-the-core\nsandbox\n"
        failed = await invoke(shell, {"command": "ls /nonexistent"}, CALL_TIMEOUT_S)
        assert failed["ok"] is False and "No such file" in failed["error"]
        python = RemoteToolProxy(PythonRunner, client)
        flood = await invoke(python, {"code": "print('x' * 10**7)"}, CALL_TIMEOUT_S)
        assert flood["ok"] is False and "output limit exceeded" in flood["error"]
        # Bad arguments are caught before they leave the box.
        bad = await invoke(calc, {"expr": "1"}, CALL_TIMEOUT_S)
        assert bad["ok"] is False and "expression" in bad["error"]
    finally:
        await client.close()


async def test_unsigned_and_wrongly_signed_callers_get_401_even_from_loopback(
        daemon_factory: Callable[..., Any], tmp_path: Path) -> None:
    core, key = await start_core(daemon_factory, tmp_path)
    url = f"{core.url}/api/tools/shell"
    body = b'{"arguments": {"command": "id"}}'
    _, health = await core.get_json("/health")
    core_id = health["id"]

    def signed_for(k: bytes, path: str, data: bytes, to: str = core_id) -> dict[str, str]:
        return {**JSON, **Signer(k).sign_headers("POST", path, data, receiver=to)}

    async with aiohttp.ClientSession() as s:
        async with s.post(url, data=body, headers=JSON) as r:
            assert r.status == 401
            assert "signed requests only" in (await r.json())["error"]["message"]
        stranger = signed_for(generate_key(), "/api/tools/shell", body)
        async with s.post(url, data=body, headers=stranger) as r:
            assert r.status == 401
            assert "wrong signature" in (await r.json())["error"]["message"]
        for_another = signed_for(key, "/api/tools/shell", body, to="0" * 32)
        async with s.post(url, data=body, headers=for_another) as r:
            assert r.status == 401 and "not for this node" in (await r.json())["error"]["message"]
        signed = signed_for(key, "/api/tools/shell", body)
        async with s.post(url, data=body, headers=signed) as r:
            assert r.status == 200 and (await r.json())["ok"] is True
        async with s.post(url, data=body, headers=signed) as r:  # the same token again
            assert r.status == 401 and "replayed" in (await r.json())["error"]["message"]
        bad_args = b'{"arguments": {"command": 42}}'
        headers = signed_for(key, "/api/tools/shell", bad_args)
        async with s.post(url, data=bad_args, headers=headers) as r:
            assert r.status == 400 and "command" in (await r.json())["error"]["message"]
        huge = b'{"arguments": {"command": "' + b"x" * (1024 * 1024) + b'"}}'
        async with s.post(url, data=huge, headers=signed_for(key, "/api/tools/shell",
                                                             huge)) as r:
            assert r.status == 413
        headers = signed_for(key, "/api/tools/teleport", b"{}")
        async with s.post(f"{core.url}/api/tools/teleport", data=b"{}", headers=headers) as r:
            assert r.status == 404


async def test_an_edge_uses_the_cores_tools_and_world_through_config(
        daemon_factory: Callable[..., Any], tmp_path: Path) -> None:
    core_key = tmp_path / "core.key"
    create_key_file(core_key)
    core = await daemon_factory(node={"tier": "core"}, tools={"serve": True},
                                world={"mode": "local", "serve": True},
                                security={"cluster_key_file": str(core_key)})
    edge = await daemon_factory(
        node={"tier": "edge"},
        tools={"enabled": ["calculator", "shell", "world_get"], "endpoints": [core.node_url]},
        world={"mode": "remote", "endpoint": core.node_url},
        security={"cluster_key_file": str(core_key)})
    status, listing = await edge.get_json("/api/tools")
    where = {t["name"]: t["where"] for t in listing["tools"]}
    assert where == {"calculator": "local", "shell": core.node_url, "world_get": "local"}
    assert listing["served"] == []
    async with aiohttp.ClientSession() as s:
        async with s.put(f"{edge.url}/api/world/hall.light", json="on") as r:
            assert r.status == 200
            version = (await r.json())["version"]
        async with s.get(f"{core.url}/api/world/hall.light") as r:
            assert (await r.json()) == {"key": "hall.light", "value": "on", "version": version}
        async with s.put(f"{edge.url}/api/world/hall.light", json="off",
                         headers={"If-Match": str(version - 1)}) as r:
            assert r.status == 412
        # A listing far larger than one network read still arrives whole.
        for i in range(40):
            async with s.put(f"{core.url}/api/world/big{i:02d}", json="x" * 4000) as r:
                assert r.status == 200
    status, state = await edge.get_json("/api/world")
    assert status == 200
    assert [e["key"] for e in state["entries"]] == [f"big{i:02d}" for i in range(40)] + [
        "hall.light"]


async def test_an_edges_world_feed_carries_the_cores_changes(
        daemon_factory: Callable[..., Any], tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    create_key_file(key_file)
    core = await daemon_factory(world={"mode": "local", "serve": True},
                                security={"cluster_key_file": str(key_file)})
    edge = await daemon_factory(world={"mode": "remote", "endpoint": core.node_url},
                                security={"cluster_key_file": str(key_file)})
    async with aiohttp.ClientSession() as s, s.get(f"{edge.url}/api/world/events") as feed:
        assert (await feed.content.readline()).startswith(b": subscribed")
        await feed.content.readline()
        # The edge forwards the core's feed; wait until its subscription reached the core
        # (only the core's status can tell, so poll it, with a generous deadline).
        async def subscribed() -> None:
            while True:
                _, info = await core.get_json("/api/status")
                if info["components"]["world"]["subscribers"] == 1:
                    return
                await asyncio.sleep(POLL_S)

        await asyncio.wait_for(subscribed(), FEED_TIMEOUT_S)
        async with s.put(f"{core.url}/api/world/door", json="open") as r:
            assert r.status == 200
        line = b""
        while not line.startswith(b"data:"):
            line = await asyncio.wait_for(feed.content.readline(), FEED_TIMEOUT_S)
    assert json.loads(line[5:]) == {"op": "set", "key": "door", "value": "open", "version": 1}
