"""The router's first-token, idle and failover-budget limits against peers that hang."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from appliance.config import LlmConfig
from appliance.discovery.registry import PeerRegistry
from appliance.llm.chat import ChatRequest, NoLLMAvailable
from appliance.llm.router import Router
from tests.llm.stalling_peer import FIRST_PIECE, StallingPeer

HELLO = [{"role": "user", "content": "Say hello."}]
# Short enough to keep the tests quick, long enough for a loaded box's loopback.
SHORT_S = 1.0
LONG_S = 600.0
SSE_DEADLINE_S = 60.0


@pytest.fixture
async def stalling() -> AsyncIterator[Callable[..., Any]]:
    started: list[StallingPeer] = []

    async def make(mode: str, name: str = "") -> StallingPeer:
        peer = StallingPeer(mode, name)
        started.append(peer)
        return await peer.start()

    yield make
    for peer in started:
        await peer.close()


def registry_of(*peers: StallingPeer) -> PeerRegistry:
    """A real discovery registry that trusts ``peers`` as llm cores (as after a challenge)."""
    registry = PeerRegistry(own_id="edge")
    for p in peers:
        assert registry.add_static(p.url, {"id": p.name, "name": p.name, "roles": "llm",
                                           "tier": "core"}) is not None
    return registry


async def answer(router: Router) -> list[Any]:
    chunks = [c async for c in router.stream(ChatRequest(messages=HELLO, max_tokens=4,
                                                         temperature=0))]
    assert chunks[-1].finish_reason in ("stop", "length")
    return chunks


async def route_once(cfg: LlmConfig, engine: Any, registry: Any) -> tuple[Router, list[Any]]:
    """A router over ``registry``'s llm peers and ``engine``; its answer to one question."""
    router = Router(cfg, engine, lambda: registry.select("llm"), mark_down=registry.mark_down)
    await router.start()
    try:
        return router, await answer(router)
    finally:
        await router.stop()


@pytest.mark.model
async def test_hanging_cores_fail_over_to_the_local_model_and_are_marked_down(
        stalling: Any, make_engine: Any) -> None:
    silent = await stalling("silent", "core-a-silent")
    mute = await stalling("mute", "core-b-mute")
    registry = registry_of(silent, mute)
    cfg = LlmConfig(mode="auto", connect_timeout_s=SHORT_S, first_token_timeout_s=SHORT_S,
                    failover_budget_s=LONG_S)
    router, chunks = await route_once(cfg, await make_engine(), registry)
    assert chunks[-1].served_by == "local"
    # Both cores got the request and were given up on: no headers / no first token.
    assert silent.got_request.is_set() and mute.got_request.is_set()
    assert router.stats["failovers"] == 2 and router.stats["local"] == 1
    # The registry heard of it at once: nothing else on this node picks them now.
    assert registry.select("llm") == []
    for p in (silent, mute):
        peer = registry.get(p.name)
        assert peer is not None and not peer.healthy
        assert "timed out" in peer.problem, peer.problem


@pytest.mark.model
async def test_failover_budget_caps_the_wait_then_the_local_model_answers(
        stalling: Any, make_engine: Any) -> None:
    silent = await stalling("silent", "core-a-silent")
    mute = await stalling("mute", "core-b-mute")
    registry = registry_of(silent, mute)
    # The first-token timeout alone would wait ten minutes; the budget ends it.
    cfg = LlmConfig(mode="auto", connect_timeout_s=SHORT_S, first_token_timeout_s=LONG_S,
                    failover_budget_s=SHORT_S)
    router, chunks = await route_once(cfg, await make_engine(), registry)
    assert chunks[-1].served_by == "local"
    assert silent.got_request.is_set()
    # With the budget used up, the second core was skipped, and the local model asked.
    assert not mute.got_request.is_set()
    assert router.stats["failovers"] == 1


async def test_remote_only_router_names_every_hanging_core(stalling: Any) -> None:
    silent = await stalling("silent", "core-a-silent")
    registry = registry_of(silent)
    cfg = LlmConfig(mode="remote", connect_timeout_s=SHORT_S, first_token_timeout_s=SHORT_S)
    router = Router(cfg, None, lambda: registry.select("llm"), mark_down=registry.mark_down)
    await router.start()
    try:
        with pytest.raises(NoLLMAvailable, match=r"core-a-silent.*timed out"):
            await answer(router)
    finally:
        await router.stop()
    peer = registry.get("core-a-silent")
    assert peer is not None and not peer.healthy


async def test_a_core_stalling_after_its_first_token_ends_the_sse_with_an_error(
        daemon_factory: Any, stalling: Any) -> None:
    stall = await stalling("stall")
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [stall.url],
                                     "first_token_timeout_s": LONG_S,
                                     "idle_timeout_s": SHORT_S})
    body = {"model": "default", "stream": True, "max_tokens": 50, "messages": HELLO}
    events: list[str] = []
    timeout = aiohttp.ClientTimeout(total=SSE_DEADLINE_S)
    async with aiohttp.ClientSession(timeout=timeout) as s, \
            s.post(edge.url + "/v1/chat/completions", json=body) as r:
        assert r.status == 200
        async for raw in r.content:  # until the daemon ends the stream
            line = raw.decode().strip()
            if line:
                assert line.startswith("data: "), line
                events.append(line[len("data: "):])
    assert stall.got_request.is_set()
    assert "[DONE]" not in events
    objs = [json.loads(e) for e in events]
    content = "".join(c["choices"][0]["delta"].get("content") or ""
                      for c in objs if c.get("choices"))
    assert content == FIRST_PIECE
    assert all(c["choices"][0]["finish_reason"] is None for c in objs if c.get("choices"))
    error = objs[-1]["error"]
    assert error["code"] == "stream_interrupted"
    assert "incomplete" in error["message"] and "timed out" in error["message"]
    _, status = await edge.get_json("/api/status")
    assert status["components"]["llm_router"]["interrupted"] == 1
