"""A model split over two boxes on a namespace LAN: same answer, faults handled, no stranger.

Core ``core-a`` loads SmolLM2 with its last layers on worker ``mid-b`` (ggml's RPC
server behind the TLS link); namespace ``c`` plays a stranger on the LAN.
"""

from __future__ import annotations

import json
import signal
import struct
from pathlib import Path
from typing import Any

import pytest

from appliance.llm.rpc.link import NodeCertTrust
from appliance.llm.rpc.tunnel import LinkError, open_link
from appliance.security.keys import generate_key
from tests.lan import clients
from tests.lan.netlab import Lan, LanNode
from tests.lan.waiting import wait_for
from tests.llm.conftest import llm_section
from tests.support.daemon import DaemonProcess
from tests.support.nodelink import node_tls

pytestmark = [pytest.mark.lan, pytest.mark.model]

SPLIT_WAIT_S = 90.0
RPC_PORT = 8702
# ggml's RPC HELLO: command 14, an 8-byte size, 24 bytes of capabilities; its reply
# starts with the 8-byte size 28.
HELLO = b"\x0e" + struct.pack("<Q", 24) + bytes(24)
HELLO_REPLY = struct.pack("<Q", 28)


# A stranger on the LAN: raw TCP speaking ggml RPC, then TLS without the cluster key.
STRANGER = """
import json, socket, ssl, sys
host, port, hello = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
out = {}
with socket.create_connection((host, port), timeout=5) as s:
    s.sendall(hello)
    try:
        out["raw"] = s.recv(4096).hex()
    except OSError as exc:
        out["raw"] = type(exc).__name__
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
try:
    with socket.create_connection((host, port), timeout=5) as raw, \\
            ctx.wrap_socket(raw) as s:
        s.sendall(b"HA-RPC/1 session\\n" + hello)
        out["tls"] = s.recv(4096).hex()
except (OSError, ssl.SSLError) as exc:
    out["tls"] = type(exc).__name__
print(json.dumps(out))
"""


# The core's own user, with the real openai client, at temperature 0.
CHAT = """
import json, sys
from openai import OpenAI
client = OpenAI(base_url=f"http://127.0.0.1:{sys.argv[1]}/v1", api_key="unused", max_retries=0)
r = client.chat.completions.create(
    model="default", max_tokens=16, temperature=0,
    messages=[{"role": "user", "content": "Name three colours of the rainbow."}])
print(json.dumps({"served_by": r.system_fingerprint, "content": r.choices[0].message.content}))
"""


async def _chat(lan: Lan, node: LanNode, member: str = "a") -> dict[str, Any]:
    """A chat at temperature 0 on the core's loopback."""
    return await clients.run_in(lan, member, CHAT, str(node.proc.port))


async def _llm(node: LanNode) -> dict[str, Any]:
    status, body = await node.get_json("/api/status")
    assert status == 200
    return body["components"]["llm"] | {"roles": body["roles"], "line": body["status"]}


async def _split_over(node: LanNode, worker: str) -> dict[str, Any] | None:
    llm = await _llm(node)
    places = {p["where"]: p for p in (llm.get("placement") or {}).get("places", [])}
    if llm["serving"] and llm["mode"] == "split" and worker in places:
        return llm
    return None


async def _alone(node: LanNode) -> dict[str, Any] | None:
    llm = await _llm(node)
    return llm if llm["serving"] and llm["mode"] == "alone" else None


def _listeners(lan: Lan, member: str) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket listening in ``member``'s namespace."""
    out = lan.run(member, "ss", "-ltnH").stdout
    found = set()
    for line in out.splitlines():
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        found.add((addr.strip("[]"), int(port)))
    return found


@pytest.fixture
def worker_cfg() -> dict[str, Any]:
    return {"llm": {"mode": "off", "rpc_serve": True, "rpc_threads": 1, "rpc_port": RPC_PORT}}


@pytest.fixture
def core_cfg(models_dir: Path) -> dict[str, Any]:
    return {"node": {"models_dir": str(models_dir)},
            "llm": llm_section(models_dir, threads=1, slots=1, context=512, serve=True,
                               rpc_workers=["mid-b"])}


async def test_a_model_split_over_two_boxes_answers_as_unsplit_and_survives_its_worker(
        lan, lan_node, cluster_key, worker_cfg, core_cfg, tmp_path):
    worker = await lan_node("b", "mid", cluster_key, **worker_cfg)
    core = await lan_node("a", "core", cluster_key, **core_cfg)

    # 1. The split: layers on both boxes, as llama.cpp reports it, and in STATUS=.
    llm = await wait_for(lambda: _split_over(core, "mid-b"), SPLIT_WAIT_S,
                         "core-a to serve the model split with mid-b")
    places = {p["where"]: p for p in llm["placement"]["places"]}
    assert places["local"]["count"] > 0 and places["mid-b"]["count"] > 0
    assert places["mid-b"]["model_mib"] > 0
    # The output head stays on the core: logits never cross the link.
    assert places["local"]["output"] and not places["mid-b"]["output"]
    assert places["local"]["count"] + places["mid-b"]["count"] == llm["placement"]["n_layer"]
    assert "llm" in llm["roles"] and "split: layers" in llm["line"]
    await wait_for(lambda: _notified(core, "split: layers"), 10, "STATUS= to say split")
    split = await _chat(lan, core)
    assert split["content"]
    _, wstatus = await worker.get_json("/api/status")
    rpc = wstatus["components"]["rpc_worker"]
    assert "rpc" in wstatus["roles"] and rpc["serving"] and rpc["sessions"] >= 1
    assert rpc["bytes_received"] > 1_000_000  # the worker's share of the weights came over

    # 2. Nothing takes raw ggml RPC on a LAN address, and a stranger gets no session.
    lan_ports = {port for addr, port in _listeners(lan, "b") if addr not in ("127.0.0.1",)}
    assert lan_ports == {worker.proc.port, RPC_PORT}
    assert all(addr == "127.0.0.1" for addr, port in _listeners(lan, "a")
               if port != core.proc.port)
    refused = rpc["refused"]
    seen = await clients.run_in(lan, "c", STRANGER, lan.addr("b"), str(RPC_PORT), HELLO.hex())
    assert not _rpc_reply(seen["raw"]) and not _rpc_reply(seen["tls"]), seen
    intruder = node_tls(tmp_path / "intruder", generate_key())
    with pytest.raises(LinkError):  # from the test's own port on the LAN, another cluster
        await open_link(NodeCertTrust(intruder), lan.addr("b"), RPC_PORT,
                        f"session {intruder.node_id} intruder")
    _, after = await worker.get_json("/api/status")
    assert after["components"]["rpc_worker"]["refused"] >= refused + 3
    assert after["components"]["rpc_worker"]["sessions"] == rpc["sessions"]

    # 3. The worker's RPC server dies: the worker restarts it, the core notices, says so,
    #    serves alone meanwhile (the model fits), and takes the worker back.
    losses = llm["losses"]
    pid = rpc["pid"]
    lan.run("b", "kill", "-9", str(pid))
    await wait_for(lambda: _lost(core, losses), 30, "core-a to report losing mid-b")
    back = await wait_for(lambda: _split_over(core, "mid-b"), SPLIT_WAIT_S,
                          "core-a to take mid-b back after its RPC server restarted")
    assert back["reloads"] > llm["reloads"]
    _, wstatus = await worker.get_json("/api/status")
    assert wstatus["components"]["rpc_worker"]["restarts"] == 1
    assert wstatus["components"]["rpc_worker"]["pid"] != pid
    assert (await _chat(lan, core))["content"] == split["content"]

    # 4. The worker box dies: the core reloads on its own (it fits) and says why.
    seen = len(core.proc.notify.lines())
    await worker.stop(signal.SIGKILL)
    alone = await wait_for(lambda: _alone(core), 60, "core-a to serve alone after mid-b died")
    assert "mid-b" in alone["problem"] and "llm" in alone["roles"]
    await wait_for(lambda: _notified(core, "on this box alone (lost mid-b", seen), 10,
                   "STATUS= to say the model runs alone since mid-b was lost")
    unsplit = await _chat(lan, core)
    assert unsplit["content"] == split["content"]  # temperature 0: the same text, unsplit

    # 5. The worker comes back (same box, same identity): the split is picked up again.
    (worker.proc.tmp / "again").mkdir()
    again = DaemonProcess(worker.proc.tmp / "again", worker.proc.config, netns=lan.ns("b"))
    try:
        await again.start()
        await wait_for(lambda: _split_over(core, "mid-b"), SPLIT_WAIT_S,
                       "core-a to split with mid-b again after it restarted")
        assert (await _chat(lan, core))["content"] == split["content"]
    finally:
        await again.stop()


async def _notified(node: LanNode, text: str, since: int = 0) -> bool:
    """Whether a STATUS= line sent to systemd (after the first ``since`` lines) has ``text``."""
    return any(text in line and line.startswith("STATUS=")
               for line in node.proc.notify.lines()[since:])


async def _lost(node: LanNode, losses: int) -> bool:
    llm = await _llm(node)
    return llm["losses"] > losses and "mid-b" in json.dumps(llm["workers"])


@pytest.fixture
def lan4():
    """a: the split core, b: its worker, c: an edge, d: another core."""
    net = Lan.create(["a", "b", "c", "d"])
    yield net
    net.destroy()


async def test_without_fallback_a_lost_worker_stops_the_model_and_the_edge_fails_over(
        lan4, daemon_factory, cluster_key, worker_cfg, core_cfg, models_dir):
    lan = lan4
    made: list[LanNode] = []

    async def node(member: str, tier: str, **sections: Any) -> LanNode:
        cfg: dict[str, Any] = {
            "node": {"tier": tier, "name": f"{tier}-{member}"}, "http": {"host": "0.0.0.0"},
            "discovery": {"enabled": True, "interfaces": ["veth0"]},
            "security": {"cluster_key_file": str(cluster_key)}}
        for name, values in sections.items():
            cfg.setdefault(name, {}).update(values)
        made.append(LanNode(await daemon_factory(netns=lan.ns(member), **cfg), lan.addr(member)))
        return made[-1]

    try:
        worker = await node("b", "mid", **worker_cfg)
        core_cfg["llm"]["rpc_fallback"] = "off"
        split_core = await node("a", "core", **core_cfg)
        await node("d", "core", node={"models_dir": str(models_dir)},
                   llm=llm_section(models_dir, threads=1, slots=1, context=512, serve=True))
        edge = await node("c", "edge", llm={"mode": "remote"})
        await wait_for(lambda: _split_over(split_core, "mid-b"), SPLIT_WAIT_S,
                       "core-a to split with mid-b")
        await wait_for(lambda: _llm_peers(edge, {"core-a", "core-d"}), 30,
                       "the edge to see both cores' llm")

        await worker.stop(signal.SIGKILL)

        async def unserved() -> dict[str, Any] | None:
            llm = await _llm(split_core)
            return llm if llm["mode"] == "none" and not llm["serving"] else None

        llm = await wait_for(unserved, 60, "core-a to stop serving the model")
        assert "llm" not in llm["roles"] and "NOT SERVED" in llm["line"]
        assert "mid-b" in json.dumps(llm["workers"])
        await wait_for(lambda: _notified(split_core, "NOT SERVED"), 10,
                       "STATUS= to say NOT SERVED")
        # Asked directly, core-a says no before any token, in the API's error shape ...
        refused = await clients.run_in(lan, "a", NO_MODEL, str(split_core.proc.port))
        assert refused["status"] == 503 and refused["code"] == "no_llm_available"
        # ... the LAN stops offering its llm, and the edge is answered by core-d.
        await wait_for(lambda: _llm_peers(edge, {"core-d"}), 30,
                       "the edge to select only core-d for llm")
        for _ in range(2):
            # On the edge's own loopback, as its user would ask (it serves no one else).
            assert (await clients.chat(lan, "c", edge.proc.port))["served_by"] == "core-d"
    finally:
        for n in made:
            await n.close()


NO_MODEL = """
import json, sys, urllib.request, urllib.error
body = json.dumps({"model": "default", "max_tokens": 4,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/chat/completions", data=body,
                             headers={"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req, timeout=60)
    print(json.dumps({"status": 200}))
except urllib.error.HTTPError as exc:
    print(json.dumps({"status": exc.code, "code": json.load(exc)["error"]["code"]}))
"""


async def _llm_peers(node: LanNode, names: set[str]) -> bool:
    return {p["name"] for p in await node.peers(role="llm")} == names


def _rpc_reply(seen: str) -> bool:
    """Whether a stranger's read (hex bytes, or an exception's name) is a ggml RPC reply."""
    try:
        data = bytes.fromhex(seen)
    except ValueError:
        return False  # the connection failed: no byte at all
    return data.startswith(HELLO_REPLY)
