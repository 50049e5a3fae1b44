"""The OpenAI surface clients use, through the real `openai` client (and langchain-openai),
against one real daemon on the real SmolLM2 model: logprobs, n, parallel tool calls,
legacy completions, embeddings, cached tokens, max_completion_tokens, long JSON
strings, and the 400s that name the field at fault."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import pytest_asyncio

from tests.llm.conftest import MODEL_ID, llm_section
from tests.support.daemon import DaemonProcess, free_port, minimal_config
from tests.support.metrics import samples

pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

WEATHER_TOOL = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
# One earlier exchange in which two calls came at once: SmolLM2 follows the example.
EARLIER_CALLS = [
    {"role": "user", "content": "What is the weather in Rome and in Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "a", "type": "function",
         "function": {"name": "get_weather", "arguments": json.dumps({"city": "Rome"})}},
        {"id": "b", "type": "function",
         "function": {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"})}}]},
    {"role": "tool", "tool_call_id": "a", "content": "sunny"},
    {"role": "tool", "tool_call_id": "b", "content": "rain"},
    {"role": "assistant", "content": "Rome is sunny, Oslo has rain."},
    {"role": "user", "content": "What is the weather in Paris and in London?"}]
LONG = ("The quick brown fox jumps over the lazy dog while the five boxing wizards jump "
        "quickly past the sleeping cat.")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def daemon(tmp_path_factory: pytest.TempPathFactory,
                 models_dir: Path) -> AsyncIterator[DaemonProcess]:
    tmp = tmp_path_factory.mktemp("surface")
    d = DaemonProcess(tmp, minimal_config(tmp / "state", free_port(),
                                          llm=llm_section(models_dir)))
    await d.start()
    yield d
    await d.stop()


def client(d: DaemonProcess) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=d.url + "/v1", api_key="unused", max_retries=0)


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_logprobs_and_top_logprobs(daemon: DaemonProcess) -> None:
    async with client(daemon) as c:
        done = await c.chat.completions.create(
            model="default", messages=ask("Name a colour."), max_tokens=8, temperature=0,
            logprobs=True, top_logprobs=3)
    choice = done.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    entries = choice.logprobs.content
    assert "".join(e.token for e in entries) == choice.message.content
    for e in entries:
        assert e.logprob <= 0.0
        assert bytes(e.bytes or []) == e.token.encode()
        assert len(e.top_logprobs) == 3
        values = [t.logprob for t in e.top_logprobs]
        assert values == sorted(values, reverse=True)
        # Greedy decoding picks the most likely token, so it heads its alternatives.
        assert e.top_logprobs[0].token == e.token
        assert math.isclose(e.top_logprobs[0].logprob, e.logprob, abs_tol=1e-4)
        assert sum(math.exp(v) for v in values) <= 1.0 + 1e-4


async def test_logprobs_stream_with_each_piece(daemon: DaemonProcess) -> None:
    async with client(daemon) as c:
        stream = await c.chat.completions.create(
            model="default", messages=ask("Name a colour."), max_tokens=8, temperature=0,
            logprobs=True, stream=True)
        text, tokens = [], []
        async for chunk in stream:
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
                if choice.logprobs and choice.logprobs.content:
                    tokens += [e.token for e in choice.logprobs.content]
                    assert all(e.top_logprobs == [] for e in choice.logprobs.content)
    assert tokens and "".join(tokens) == "".join(text)


async def test_n_choices_differ_and_each_finishes(daemon: DaemonProcess) -> None:
    async with client(daemon) as c:
        done = await c.chat.completions.create(
            model="default", messages=ask("Invent a name for a cat."), max_tokens=12,
            temperature=1.0, seed=7, n=3)
        assert [ch.index for ch in done.choices] == [0, 1, 2]
        texts = [ch.message.content for ch in done.choices]
        assert all(t for t in texts) and len(set(texts)) > 1, texts
        assert all(ch.finish_reason in ("stop", "length") for ch in done.choices)
        assert done.usage is not None
        assert done.usage.completion_tokens >= 3
        stream = await c.chat.completions.create(
            model="default", messages=ask("Invent a name for a dog."), max_tokens=10,
            temperature=1.0, seed=3, n=2, stream=True)
        finished: dict[int, str] = {}
        async for chunk in stream:
            for ch in chunk.choices:
                if ch.finish_reason:
                    finished[ch.index] = ch.finish_reason
    assert sorted(finished) == [0, 1]


async def test_parallel_tool_calls_when_the_model_emits_several(daemon: DaemonProcess) -> None:
    async with client(daemon) as c:
        both = await c.chat.completions.create(
            model="default", messages=EARLIER_CALLS, tools=WEATHER_TOOL,
            tool_choice="required", temperature=0, max_tokens=80)
        one = await c.chat.completions.create(
            model="default", messages=EARLIER_CALLS, tools=WEATHER_TOOL,
            tool_choice="required", temperature=0, max_tokens=80, parallel_tool_calls=False)
    calls = both.choices[0].message.tool_calls or []
    assert both.choices[0].finish_reason == "tool_calls"
    assert len(calls) == 2, calls
    assert {json.loads(c.function.arguments)["city"] for c in calls} == {"Paris", "London"}
    assert len({c.id for c in calls}) == 2
    assert len(one.choices[0].message.tool_calls or []) == 1  # honoured: one call only


async def test_legacy_completions_streamed_and_not(daemon: DaemonProcess) -> None:
    async with client(daemon) as c:
        done = await c.completions.create(model="default", prompt="The capital of France is",
                                          max_tokens=6, temperature=0, logprobs=2, echo=True)
        assert done.object == "text_completion"
        text = done.choices[0].text
        assert text.startswith("The capital of France is") and len(text) > 24
        lp = done.choices[0].logprobs
        assert lp is not None and lp.tokens and len(lp.tokens) == len(lp.token_logprobs or [])
        assert all(len(t) == 2 for t in lp.top_logprobs or [])
        stream = await c.completions.create(model="default", prompt="One, two, three,",
                                            max_tokens=6, temperature=0, stream=True)
        pieces, finish = [], None
        async for chunk in stream:
            pieces.append(chunk.choices[0].text)
            finish = chunk.choices[0].finish_reason or finish
        plain = await c.completions.create(model="default", prompt="One, two, three,",
                                           max_tokens=6, temperature=0)
    assert finish in ("stop", "length")
    assert "".join(pieces) == plain.choices[0].text  # the same greedy text either way


async def test_embeddings_float_and_base64_agree(daemon: DaemonProcess) -> None:
    texts = ["a cat sat on the mat", "a kitten sat on the rug", "stock markets fell sharply"]
    async with client(daemon) as c:
        as_float = await c.embeddings.create(model="default", input=texts,
                                             encoding_format="float")
        # The openai client asks for base64 by default and decodes it itself.
        as_b64 = await c.embeddings.create(model="default", input=texts)
    a = np.array([d.embedding for d in as_float.data])
    b = np.array([d.embedding for d in as_b64.data])
    assert a.shape == (3, 576)  # SmolLM2-135M's hidden size
    assert np.allclose(a, b, atol=1e-6)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    sim = a @ a.T
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[1, 2]  # cat ~ kitten, not stocks
    assert as_float.usage.prompt_tokens > 0


async def test_cached_tokens_and_max_completion_tokens(daemon: DaemonProcess) -> None:
    messages = [{"role": "system", "content": "You are a terse assistant. " * 20},
                *ask("Say yes.")]
    async with client(daemon) as c:
        await c.chat.completions.create(model="default", messages=messages, max_tokens=4,
                                        temperature=0)
        again = await c.chat.completions.create(model="default", messages=messages,
                                                max_tokens=50, max_completion_tokens=2,
                                                temperature=0)
    usage = again.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens >= usage.prompt_tokens // 2
    assert usage.completion_tokens <= 2 and again.choices[0].finish_reason == "length"


async def test_json_schema_strings_are_not_cut_at_64(daemon: DaemonProcess) -> None:
    schema = {"type": "object", "properties": {"text": {"type": "string"}},
              "required": ["text"]}
    async with client(daemon) as c:
        done = await c.chat.completions.create(
            model="default", temperature=0, max_tokens=200,
            messages=ask(f"Copy this sentence exactly into the text field: {LONG}"),
            response_format={"type": "json_schema",
                             "json_schema": {"name": "copy", "schema": schema}})
    doc = json.loads(done.choices[0].message.content or "")
    assert len(doc["text"]) > 64, doc


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]},
     "messages[0].content[1]"),
    ({"messages": ask("hi"), "tools": WEATHER_TOOL,
      "tool_choice": {"type": "function", "function": {"name": "launch_rockets"}}},
     "tool_choice.function.name"),
    ({"messages": ask("hi"), "tool_choice": "required"}, "tool_choice"),
    ({"messages": ask("hi"), "top_logprobs": 2}, "top_logprobs"),
    ({"messages": ask("hi"), "n": 99}, "n"),
])
async def test_refusals_name_the_field(daemon: DaemonProcess, body: dict[str, Any],
                                       param: str) -> None:
    async with client(daemon) as c:
        with pytest.raises(openai.BadRequestError) as err:
            await c.chat.completions.create(model="default", max_tokens=4, **body)
    assert err.value.status_code == 400
    assert err.value.param == param, err.value.body


async def test_langchain_openai_uses_the_same_surface(daemon: DaemonProcess) -> None:
    from langchain_core.messages import HumanMessage
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings

    chat = ChatOpenAI(base_url=daemon.url + "/v1", api_key="unused", model=MODEL_ID,
                      temperature=0, max_tokens=8, max_retries=0, logprobs=True)
    reply = await chat.ainvoke([HumanMessage("Name a colour.")])
    assert reply.content and reply.response_metadata["logprobs"]["content"]
    several = ChatOpenAI(base_url=daemon.url + "/v1", api_key="unused", model="default",
                         temperature=1.0, max_tokens=8, max_retries=0, n=2)
    result = await several.agenerate([[HumanMessage("Invent a word.")]])
    assert len(result.generations[0]) == 2
    tools = ChatOpenAI(base_url=daemon.url + "/v1", api_key="unused", model="default",
                       temperature=0, max_tokens=80, max_retries=0).bind_tools(
        WEATHER_TOOL, tool_choice="required", parallel_tool_calls=True)
    called = await tools.ainvoke(EARLIER_CALLS)
    assert len(called.tool_calls) == 2
    embed = OpenAIEmbeddings(base_url=daemon.url + "/v1", api_key="unused",
                             model="default", check_embedding_ctx_length=False)
    vectors = await embed.aembed_documents(["one", "two"])
    assert len(vectors) == 2 and len(vectors[0]) == 576


async def test_counters_after_finished_and_cancelled_requests(daemon: DaemonProcess) -> None:
    before = (await daemon.get_json("/api/status"))[1]["components"]["llm"]
    async with client(daemon) as c:
        for _ in range(3):
            await c.chat.completions.create(model="default", messages=ask("Hi"), max_tokens=4,
                                            temperature=0)
        stream = await c.chat.completions.create(
            model="default", messages=ask("Write a long story."), max_tokens=400,
            temperature=0, stream=True)
        async for _chunk in stream:
            break
        await stream.close()  # the client hangs up mid-answer
    after = await _settled(daemon, before)
    assert after["completed"] - before["completed"] == 3
    assert after["cancelled"] - before["cancelled"] == 1
    assert after["admitted"] == 0 and after["active"] == 0


async def _settled(d: DaemonProcess, before: dict[str, Any]) -> dict[str, Any]:
    """The llm status once the hung-up stream's cancellation was counted (the server sees
    the hang-up on its next write)."""
    import asyncio

    for _ in range(200):
        now = (await d.get_json("/api/status"))[1]["components"]["llm"]
        if now["cancelled"] > before["cancelled"] and now["active"] == 0:
            return now
        await asyncio.sleep(0.05)
    return now


async def test_metrics_export_the_engine_and_pass_promtool(daemon: DaemonProcess) -> None:
    import asyncio
    import shutil
    import subprocess

    import aiohttp

    async with client(daemon) as c:
        await c.chat.completions.create(model="default", messages=ask("Hi"), max_tokens=4,
                                        temperature=0)
    async with aiohttp.ClientSession() as s, s.get(daemon.url + "/metrics") as r:
        assert r.status == 200
        text = await r.text()
    values = samples(text)
    label = f'model="{MODEL_ID}"'
    assert values[f'hybrid_agent_llm_requests_total{{{label},outcome="completed"}}'] >= 1
    assert values[f'hybrid_agent_llm_tokens_total{{kind="completion",{label}}}'] >= 1
    assert values[f"hybrid_agent_llm_slots{{{label}}}"] == 4
    assert f"hybrid_agent_llm_slots_busy{{{label}}}" in values
    assert f"hybrid_agent_llm_queue_depth{{{label}}}" in values
    assert values[f"hybrid_agent_llm_time_to_first_token_seconds_count{{{label}}}"] >= 1
    assert f"hybrid_agent_llm_time_per_output_token_seconds_count{{{label}}}" in values
    assert any(k.startswith("hybrid_agent_build_info{") for k in values)
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool (Debian's prometheus package) is not installed"
    check = await asyncio.to_thread(subprocess.run, [promtool, "check", "metrics"],
                                    input=text, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), \
        (check.stdout, check.stderr)
