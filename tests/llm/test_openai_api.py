"""The OpenAI-compatible API of a real daemon, driven by the real `openai` package and aiohttp."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import openai
import pytest

from tests.llm.conftest import MODEL_ID, llm_section
from tests.llm.test_engine import TOOLS, WEATHER

pytestmark = pytest.mark.model

STATUS_DEADLINE_S = 30.0


def client(daemon: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=daemon.url + "/v1", api_key="unused", max_retries=0)


async def llm_status(daemon: Any) -> dict[str, Any]:
    _, body = await daemon.get_json("/api/status")
    return body["components"]["llm"]


async def test_openai_client_lists_models_and_completes(daemon_factory: Any,
                                                        models_dir: Path) -> None:
    d = await daemon_factory(llm=llm_section(models_dir))
    async with client(d) as c:
        listed = await c.models.list()
        ids = [m.id for m in listed.data]
        assert MODEL_ID in ids and "default" in ids
        done = await c.chat.completions.create(
            model=MODEL_ID, messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=16, temperature=0)
    assert done.object == "chat.completion"
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].message.content
    assert done.choices[0].finish_reason in ("stop", "length")
    assert done.usage is not None and done.usage.completion_tokens >= 1


async def test_openai_client_streams_to_done(daemon_factory: Any, models_dir: Path) -> None:
    d = await daemon_factory(llm=llm_section(models_dir))
    async with client(d) as c:
        stream = await c.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "Name three fruits."}],
            max_tokens=24, temperature=0, stream=True, stream_options={"include_usage": True})
        pieces, finish, usage = [], None, None
        async for chunk in stream:
            if chunk.usage:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                finish = choice.finish_reason or finish
    assert len(pieces) > 1 and "".join(pieces).strip()
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens >= len(pieces) - 1


async def test_openai_client_gets_valid_tool_calls(daemon_factory: Any,
                                                   models_dir: Path) -> None:
    d = await daemon_factory(llm=llm_section(models_dir))
    async with client(d) as c:
        done = await c.chat.completions.create(
            model="default", tools=TOOLS, tool_choice="required", temperature=0,
            max_tokens=100,
            messages=[{"role": "user", "content": "What's the weather in Madrid for 2 days?"}])
        stream = await c.chat.completions.create(
            model="default", tools=TOOLS, temperature=0, max_tokens=100, stream=True,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            messages=[{"role": "user", "content": "Weather in Lisbon?"}])
        streamed, finish = [], None
        async for chunk in stream:
            for choice in chunk.choices:
                streamed += choice.delta.tool_calls or []
                finish = choice.finish_reason or finish
    choice = done.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name in ("get_weather", "set_timer")
    json.loads(call.function.arguments)
    assert finish == "tool_calls"
    assert streamed[0].function.name == "get_weather"
    jsonschema.validate(json.loads(streamed[0].function.arguments), WEATHER)


async def test_api_errors_are_in_openai_format(daemon_factory: Any, models_dir: Path) -> None:
    d = await daemon_factory(llm=llm_section(models_dir, context=512))
    async with client(d) as c:
        with pytest.raises(openai.NotFoundError) as nf:
            await c.chat.completions.create(model="gpt-nonexistent", max_tokens=4,
                                            messages=[{"role": "user", "content": "hi"}])
        assert nf.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as long:
            await c.chat.completions.create(
                model="default", max_tokens=4,
                messages=[{"role": "user", "content": "hello " * 700}])
        assert long.value.code == "context_length_exceeded"
        assert "512" in long.value.message
        with pytest.raises(openai.BadRequestError) as bad:
            await c.chat.completions.create(model="default", temperature=7,
                                            messages=[{"role": "user", "content": "hi"}])
        assert "temperature" in bad.value.message
    async with aiohttp.ClientSession() as s:
        async with s.post(d.url + "/v1/chat/completions", data=b"{nope",
                          headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "invalid_json"
        async with s.post(d.url + "/v1/chat/completions", json={"messages": []}) as r:
            assert r.status == 400
            assert (await r.json())["error"]["param"] == "messages"


async def test_full_queue_answers_503_with_retry_after(daemon_factory: Any,
                                                       models_dir: Path) -> None:
    d = await daemon_factory(llm=llm_section(models_dir, slots=1, queue=0))
    body = {"model": "default", "stream": True, "max_tokens": 1000, "temperature": 0,
            "messages": [{"role": "user", "content": "Write a very long essay on history."}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(d.url + "/v1/chat/completions", json=body) as busy_one:
            assert busy_one.status == 200
            await busy_one.content.readline()  # the first event: the slot is taken
            async with s.post(d.url + "/v1/chat/completions", json=body) as refused:
                assert refused.status == 503
                assert int(refused.headers["Retry-After"]) >= 1
                assert (await refused.json())["error"]["code"] == "busy"


async def test_client_disconnect_cancels_the_sequence(daemon_factory: Any,
                                                      models_dir: Path) -> None:
    d = await daemon_factory(llm=llm_section(models_dir, slots=1, queue=0))
    body = {"model": "default", "stream": True, "max_tokens": 1500, "temperature": 0,
            "messages": [{"role": "user", "content": "Write a very long essay on history."}]}
    async with aiohttp.ClientSession() as s:
        r = await s.post(d.url + "/v1/chat/completions", json=body)
        for _ in range(3):
            await r.content.readline()
        r.close()  # the client goes away mid-answer
    deadline = time.monotonic() + STATUS_DEADLINE_S
    while (status := await llm_status(d))["cancelled"] < 1:
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.1)
    async with client(d) as c:
        done = await c.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert done.choices[0].finish_reason in ("stop", "length")
    assert (await llm_status(d))["completion_tokens"] < 1500


async def test_node_without_llm_answers_503(daemon_factory: Any) -> None:
    d = await daemon_factory(llm={"mode": "off"})
    async with client(d) as c:
        with pytest.raises(openai.APIStatusError) as err:
            await c.chat.completions.create(model="default",
                                            messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 503
    assert err.value.code == "no_llm_available"


async def test_tool_choice_auto_and_none_and_json_object(daemon_factory: Any,
                                                        models_dir: Path) -> None:
    d = await daemon_factory(llm=llm_section(models_dir))
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    prompts = ["What's the weather in Paris for 3 days?", "Tell me a joke.",
               "Start a timer for 5 minutes."]
    async with client(d) as c:
        # "auto" is the default: each answer is either text or a schema-valid call.
        autos = await asyncio.gather(*[c.chat.completions.create(
            model="default", tools=TOOLS, temperature=0.8, seed=i, max_tokens=40,
            messages=[{"role": "user", "content": p}],
            **({"tool_choice": "auto"} if i % 2 else {}))
            for i, p in enumerate(prompts)])
        nones = await asyncio.gather(*[c.chat.completions.create(
            model="default", tools=TOOLS, tool_choice="none", temperature=0, max_tokens=16,
            messages=[{"role": "user", "content": p}]) for p in prompts[:2]])
        as_json = await c.chat.completions.create(
            model="default", response_format={"type": "json_object"}, temperature=0,
            max_tokens=120, messages=[{"role": "user", "content":
                                       "Give me a person with a name and an age as JSON."}])
    for done in autos:
        choice = done.choices[0]
        if choice.finish_reason == "tool_calls":
            (call,) = choice.message.tool_calls or []
            jsonschema.validate(json.loads(call.function.arguments),
                                schemas[call.function.name])
        else:
            assert choice.finish_reason in ("stop", "length"), choice
            assert not choice.message.tool_calls
            assert isinstance(choice.message.content, str)
    for done in nones:
        choice = done.choices[0]
        assert choice.finish_reason in ("stop", "length")
        assert not choice.message.tool_calls
        assert choice.message.content
    assert as_json.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(as_json.choices[0].message.content or ""), dict)


async def test_raw_sse_is_one_chunk_stream_ending_with_done(daemon_factory: Any,
                                                           models_dir: Path) -> None:
    """Read with aiohttp, not the openai client, which would tolerate deviations."""
    d = await daemon_factory(llm=llm_section(models_dir))
    body = {"model": "default", "stream": True, "max_tokens": 12, "temperature": 0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "Name three fruits."}]}
    lines: list[str] = []
    async with aiohttp.ClientSession() as s, \
            s.post(d.url + "/v1/chat/completions", json=body) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        async for raw in r.content:
            lines.append(raw.decode())
    events = [line.strip() for line in lines if line.strip()]
    # SSE framing: every event is one "data: " line followed by a blank line.
    assert "".join(lines) == "".join(f"{e}\n\n" for e in events)
    assert all(e.startswith("data: ") for e in events), events
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    (cid,) = {c["id"] for c in chunks}
    assert cid.startswith("chatcmpl-")
    assert len({c["created"] for c in chunks}) == 1 and len({c["model"] for c in chunks}) == 1
    with_choices = [c for c in chunks if c["choices"]]
    assert with_choices[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [c["choices"][0]["finish_reason"] for c in with_choices]
    assert finishes[:-1] == [None] * (len(finishes) - 1)
    assert finishes[-1] in ("stop", "length")
    # The usage chunk comes last, with no choices, as OpenAI sends it.
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1
    # The engine's batching counters are in /api/status.
    status = await llm_status(d)
    assert status["decode_calls"] >= chunks[-1]["usage"]["completion_tokens"]
    assert status["max_seqs_per_decode"] == 1
