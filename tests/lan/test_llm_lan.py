"""A chat request on the edge is answered by a core's LLM, and by the other core after kill -9."""

from __future__ import annotations

import json

import pytest

from tests.lan import clients
from tests.lan.peer import TestPeer
from tests.lan.waiting import wait_for

pytestmark = [pytest.mark.lan, pytest.mark.model]

CHAT_TIMEOUT_S = clients.CHAT_TIMEOUT_S


async def _chat(lan, node, member: str = "b", conversation: str | None = None) -> dict:
    """A chat on ``member``'s loopback (the edge's own user), with the real openai client."""
    return await clients.chat(lan, member, node.proc.port, conversation)


async def test_edge_chat_is_served_by_a_core_llm_and_fails_over_after_kill_9(
        lan, lan_node, cluster_key, models_dir):
    llm_core = {"node": {"models_dir": str(models_dir)},
                "llm": {"mode": "local", "serve": True, "slots": 1, "context": 512}}
    cores = {"core-a": await lan_node("a", "core", cluster_key, **llm_core),
             "core-c": await lan_node("c", "core", cluster_key, **llm_core)}
    edge = await lan_node("b", "edge", cluster_key, llm={"mode": "remote"})

    async def both_llms():
        return len(await edge.peers(role="llm")) == 2

    await wait_for(both_llms, what="both cores selectable for 'llm' on the edge")
    # One conversation: it sticks to the core that served it, so the request after the
    # kill goes to the dead core first (without it, the edge may pick the other core by
    # load and round trip, and nothing fails over).
    answer = await _chat(lan, edge, conversation="kitchen-1")
    served = answer["served_by"]
    assert served in cores
    assert isinstance(answer["content"], str)

    await cores[served].stop(9)
    other = next(name for name in cores if name != served)
    answer = await _chat(lan, edge, conversation="kitchen-1")  # the very next request
    assert answer["served_by"] == other
    dead = next(p for p in await edge.peers() if p["name"] == served)
    assert dead["healthy"] is False
    assert [p["name"] for p in await edge.peers(role="llm")] == [other]


async def test_a_node_with_llm_serve_false_refuses_the_lan_and_does_not_advertise_llm(
        lan, lan_node, cluster_key, models_dir, tmp_path):
    private = await lan_node("a", "mid", cluster_key, node={"models_dir": str(models_dir)},
                             llm={"mode": "local", "serve": False, "slots": 1, "context": 512})
    edge = await lan_node("b", "edge", cluster_key, llm={"mode": "remote"})

    async def trusted(node, name: str):
        p = next((p for p in await node.peers() if p["name"] == name), None)
        return p if p and p["trusted"] and p["healthy"] else None

    mid = await wait_for(lambda: trusted(edge, "mid-a"), what="the edge to trust mid-a")
    seen_edge = await wait_for(lambda: trusted(private, "edge-b"), what="mid-a to trust edge-b")
    # Neither advertises the llm role: one keeps its LLM to itself, the other has none.
    assert "llm" not in mid["roles"] and mid["models"] == []
    assert "llm" not in seen_edge["roles"]
    assert await edge.peers(role="llm") == []
    # A correctly signed request from the LAN is refused as not served (not as unsigned) ...
    body = json.dumps({"model": "default", "max_tokens": 8,
                       "messages": [{"role": "user", "content": "Say hi."}]}).encode()
    peer = TestPeer(tmp_path / "peer", cluster_key.read_bytes())
    try:
        for method, path, data in (("POST", "/v1/chat/completions", body),
                                   ("GET", "/v1/models", None)):
            status, answer = await peer.call(private.url, method, path, data)
            assert status == 403, answer
            assert answer["error"]["code"] == "not_served"
    finally:
        await peer.close()
    # ... while the same LLM answers its own box's loopback.
    local = await _chat(lan, private, member="a")
    assert isinstance(local["content"], str)
