"""The router between real daemons: failover before the first token, fallback, interruption."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest

from tests.llm.conftest import llm_section
from tests.support.daemon import free_port
from tests.support.sse import read_events

pytestmark = pytest.mark.model

HELLO = [{"role": "user", "content": "Say hello."}]


def client(daemon: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=daemon.url + "/v1", api_key="unused", max_retries=0)


async def served_by(daemon: Any) -> str:
    async with client(daemon) as c:
        done = await c.chat.completions.create(model="default", messages=HELLO, max_tokens=8,
                                               temperature=0)
    assert done.choices[0].message.content is not None
    return str(done.system_fingerprint)


async def test_router_fails_over_to_a_live_core_then_to_the_local_model(
        daemon_factory: Any, models_dir: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    core = await daemon_factory(llm=llm_section(models_dir, serve=True))
    edge = await daemon_factory(llm=llm_section(
        models_dir, mode="auto", endpoints=[dead, core.url + "/v1"], failover_budget_s=5.0))
    assert await served_by(edge) == f"127.0.0.1:{core.port}"
    _, status = await edge.get_json("/api/status")
    assert status["components"]["llm_router"]["failovers"] >= 1
    await core.stop()
    assert await served_by(edge) == "local"
    _, status = await edge.get_json("/api/status")
    assert status["components"]["llm_router"]["local"] == 1


async def test_remote_only_node_without_a_live_core_says_so(daemon_factory: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [dead]})
    # Before any request the configured core is taken at its word ...
    assert "answer other questions" in await abilities(edge)
    async with client(edge) as c:
        with pytest.raises(openai.APIStatusError) as err:
            await c.chat.completions.create(model="default", messages=HELLO)
    assert err.value.status_code == 503
    assert err.value.code == "no_llm_available"
    assert dead.split("//")[1] in err.value.message
    # ... and once it has failed, "what can you do" no longer promises a model.
    assert "answer other questions" not in await abilities(edge)


async def abilities(daemon: Any) -> str:
    """What the node says it can do (the small-talk intent, over /api/chat)."""
    async with aiohttp.ClientSession() as s, s.post(
            f"{daemon.url}/api/chat", json={"text": "what can you do?"}) as r:
        events = await read_events(r)
    assert events[-1][0] == "final" and events[-1][1]["intent"] == "SmallTalkAbilities", events
    return str(events[-1][1]["text"])


async def test_core_dying_mid_stream_ends_with_an_explicit_error(daemon_factory: Any,
                                                                 models_dir: Path) -> None:
    core = await daemon_factory(llm=llm_section(models_dir, serve=True))
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [core.url]})
    pieces = []
    async with client(edge) as c:
        stream = await c.chat.completions.create(
            model="default", stream=True, max_tokens=1500, temperature=0,
            messages=[{"role": "user", "content": "Write a very long essay on history."}])
        with pytest.raises(openai.APIError) as err:
            async for chunk in stream:
                for choice in chunk.choices:
                    assert choice.finish_reason is None  # never a silent, "complete" ending
                    if choice.delta.content:
                        pieces.append(choice.delta.content)
                        if len(pieces) == 3:
                            await core.stop(signal.SIGKILL)
    assert "incomplete" in str(err.value.message)
    assert len(pieces) >= 3


async def test_a_conversation_sticks_to_its_core_while_it_stays_healthy(
        daemon_factory: Any, models_dir: Path) -> None:
    from appliance.config import LlmConfig
    from appliance.llm.chat import ChatRequest
    from appliance.llm.router import Endpoint, Router

    core_a = await daemon_factory(llm=llm_section(models_dir, serve=True))
    core_b = await daemon_factory(llm=llm_section(models_dir, serve=True))
    a = Endpoint(id="a", name="core-a", url=core_a.url + "/v1")
    b = Endpoint(id="b", name="core-b", url=core_b.url + "/v1")
    ranking = [a, b]  # what discovery would rank best first; the test reorders it
    router = Router(LlmConfig(mode="remote", failover_budget_s=5.0), None, lambda: ranking)
    await router.start()

    async def ask(conversation: str | None) -> str:
        chunks = [c async for c in router.stream(ChatRequest(
            messages=HELLO, max_tokens=4, temperature=0, conversation_id=conversation))]
        assert chunks[-1].finish_reason is not None
        return chunks[-1].served_by

    try:
        assert await ask("kitchen") == "core-a"
        ranking[:] = [b, a]  # core-b is now ranked better (say, less loaded)
        assert await ask("kitchen") == "core-a"  # the conversation stays: warm prompt cache
        assert await ask("hallway") == "core-b"  # a new conversation takes the best
        assert await ask(None) == "core-b"
        await core_a.stop()  # its core goes away: the conversation moves, and sticks there
        assert await ask("kitchen") == "core-b"
        ranking[:] = [a, b]
        assert await ask("kitchen") == "core-b"
    finally:
        await router.stop()


async def test_the_openai_client_streams_a_core_answer_through_an_edge(
        daemon_factory: Any, models_dir: Path) -> None:
    core = await daemon_factory(llm=llm_section(models_dir, serve=True))
    edge = await daemon_factory(llm={"mode": "remote", "endpoints": [core.url]})
    answers = []
    for daemon in (core, edge):  # the same question, at temperature 0: the same answer
        pieces, finish, usage = [], None, None
        async with client(daemon) as c:
            stream = await c.chat.completions.create(
                model="default", stream=True, max_tokens=12, temperature=0, messages=HELLO,
                stream_options={"include_usage": True})
            async for chunk in stream:
                for choice in chunk.choices:
                    pieces.append(choice.delta.content or "")
                    finish = choice.finish_reason or finish
                usage = chunk.usage or usage
        assert finish in ("stop", "length") and usage is not None
        assert usage.completion_tokens >= 1
        answers.append("".join(pieces))
    assert answers[0] and answers[0] == answers[1]
    _, status = await edge.get_json("/api/status")
    assert status["components"]["llm_router"]["remote"] == 1  # relayed from the core
