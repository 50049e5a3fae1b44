"""What the wire between two boxes shows: tcpdump on the core's LAN interface during an edge ->
core chat sees TLS, and neither the prompt nor any of the answer. The same capture on the
edge's loopback, where the box's own client speaks plain HTTP, shows both (the control)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from pathlib import Path

import pytest

from tests.lan import clients
from tests.lan.netlab import MEMBER_IFACE, Lan
from tests.lan.waiting import wait_for

pytestmark = [pytest.mark.lan, pytest.mark.model]

PROMPT = "Repeat after me: purple elephants juggle quietly"
CHAT = f"""
import json, sys
from openai import OpenAI
client = OpenAI(base_url=f"http://127.0.0.1:{{sys.argv[1]}}/v1", api_key="unused", max_retries=0)
r = client.chat.completions.create(model="default", max_tokens=24,
                                   messages=[{{"role": "user", "content": {PROMPT!r}}}])
print(json.dumps({{"served_by": r.system_fingerprint, "content": r.choices[0].message.content}}))
"""
#: Bytes any cleartext chat on the wire would carry (the request's and the streamed answer's).
CLEARTEXT_MARKS = (PROMPT.encode(), b"chat.completion", b'"content"', b"data: {")
CAPTURE_START_S = 10.0


class Capture:
    """tcpdump in a namespace, writing every packet of ``port`` on ``iface`` to a file.

    ``--immediate-mode``: packets reach tcpdump as they come, not in the kernel's blocks,
    so the chat's last packets are in the file when it is stopped right after the chat."""

    def __init__(self, lan: Lan, member: str, iface: str, port: int, path: Path) -> None:
        self.argv = ["ip", "netns", "exec", lan.ns(member), "tcpdump", "-i", iface, "-U", "-s",
                     "0", "--immediate-mode", "-w", str(path), "tcp", "port", str(port)]
        self.path = path
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Capture:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert self.proc.stderr is not None
        line = await asyncio.wait_for(self.proc.stderr.readline(), CAPTURE_START_S)
        assert b"listening on" in line, line  # capturing from here on
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(self.proc.wait(), CAPTURE_START_S)

    def data(self) -> bytes:
        return self.path.read_bytes()


async def test_an_edge_to_core_chat_crosses_the_lan_encrypted(
        lan, lan_node, cluster_key, models_dir, tmp_path):
    core = await lan_node("a", "core", cluster_key, node={"models_dir": str(models_dir)},
                          llm={"mode": "local", "serve": True, "slots": 1, "context": 512})
    edge = await lan_node("b", "edge", cluster_key, llm={"mode": "remote"})

    async def core_selectable():
        return [p["name"] for p in await edge.peers(role="llm")] == ["core-a"]

    await wait_for(core_selectable, what="the edge to select core-a for llm")
    port = core.proc.port
    async with Capture(lan, "a", MEMBER_IFACE, port, tmp_path / "lan.pcap") as wire, \
            Capture(lan, "b", "lo", edge.proc.port, tmp_path / "loopback.pcap") as local:
        answer = await clients.run_in(lan, "b", CHAT, str(edge.proc.port))
    assert answer["served_by"] == "core-a" and answer["content"]

    on_the_lan = wire.data()
    assert len(on_the_lan) > 4000, "the capture caught (almost) nothing of the chat"
    assert b"\x17\x03\x03" in on_the_lan  # TLS application data records
    for mark in CLEARTEXT_MARKS:
        assert mark not in on_the_lan, f"{mark!r} crossed the LAN in clear"
    words = [w for w in answer["content"].split() if len(w) >= 6]
    for word in words:
        assert word.encode() not in on_the_lan, f"the answer's {word!r} crossed in clear"
    # The control: the same search finds the chat where it does travel in clear.
    on_loopback = local.data()
    for mark in CLEARTEXT_MARKS[:3]:  # (the local client does not stream: no SSE there)
        assert mark in on_loopback, f"the control capture lacks {mark!r}"
