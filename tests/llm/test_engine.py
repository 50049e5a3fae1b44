"""The in-process engine on the real SmolLM2 model: batching, limits, cancellation, grammars."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from typing import Any

import jsonschema
import pytest

from appliance.llm.chat import ChatChunk, ChatRequest, InvalidRequest, LLMBusy, PromptTooLong

pytestmark = pytest.mark.model

ADMIT_DEADLINE_S = 30.0
# Generous: the loop only has to run one callback; it misses this only when blocked.
LOOP_CALLBACK_DEADLINE_S = 10.0

WEATHER = {"type": "object",
           "properties": {"city": {"type": "string"},
                          "days": {"type": "integer", "minimum": 1, "maximum": 14},
                          "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
           "required": ["city", "days", "unit"]}
TOOLS = [{"type": "function", "function": {"name": "get_weather",
                                           "description": "Weather forecast for a city",
                                           "parameters": WEATHER}},
         {"type": "function", "function": {
             "name": "set_timer", "description": "Start a timer",
             "parameters": {"type": "object",
                            "properties": {"seconds": {"type": "integer"},
                                           "label": {"type": "string"}},
                            "required": ["seconds"]}}}]


def ask(text: str, **kw: Any) -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": text}], **kw)


async def collect(engine: Any, request: ChatRequest) -> tuple[str, ChatChunk, list[float]]:
    """The text, the final chunk and the arrival time of every chunk."""
    text, times = [], []
    last = None
    async for chunk in engine.stream(request):
        times.append(time.monotonic())
        text.append(chunk.content)
        last = chunk
    assert last is not None and last.finish_reason
    return "".join(text), last, times


async def test_engine_answers_with_the_real_model(make_engine: Any) -> None:
    engine = await make_engine()
    text, last, _ = await collect(engine, ask("What is the capital of France?",
                                              temperature=0, max_tokens=24))
    assert text.strip()
    assert last.finish_reason in ("stop", "length")
    assert last.usage["completion_tokens"] >= 1
    assert last.usage["total_tokens"] == last.usage["prompt_tokens"] + \
        last.usage["completion_tokens"]
    assert last.served_by == "local"


async def test_max_tokens_stops_with_length(make_engine: Any) -> None:
    engine = await make_engine()
    _, last, _ = await collect(engine, ask("Write a long story about a dragon.",
                                           temperature=0, max_tokens=7))
    assert last.finish_reason == "length"
    assert last.usage["completion_tokens"] == 7


async def test_stop_string_ends_the_answer_before_it(make_engine: Any) -> None:
    engine = await make_engine()
    free, _, _ = await collect(engine, ask("Count from 1 to 20, separated by commas.",
                                           temperature=0, max_tokens=60))
    assert "5" in free, free
    stop = free[free.index("5"):free.index("5") + 1]
    text, last, _ = await collect(engine, ask("Count from 1 to 20, separated by commas.",
                                              temperature=0, max_tokens=60, stop=(stop,)))
    assert last.finish_reason == "stop"
    assert text == free[:free.index(stop)]


async def test_seed_makes_sampling_repeatable(make_engine: Any) -> None:
    engine = await make_engine()
    req = ask("Tell me a joke.", temperature=1.0, top_p=0.9, seed=1234, max_tokens=20)
    first, _, _ = await collect(engine, req)
    second, _, _ = await collect(engine, req)
    assert first == second
    # The second prompt reused the first one's KV cache instead of decoding it again.
    assert engine.describe()["cached_prompt_tokens"] > 0


async def test_two_streams_are_decoded_in_one_batch_and_both_complete(
        make_engine: Any) -> None:
    engine = await make_engine(slots=2)
    a, b = await asyncio.gather(
        collect(engine, ask("Describe the sea.", temperature=0, max_tokens=48)),
        collect(engine, ask("Describe a forest.", temperature=0, max_tokens=48)))
    for _, last, _ in (a, b):
        assert last.finish_reason in ("stop", "length")
    stats = engine.describe()
    generated = a[1].usage["completion_tokens"] + b[1].usage["completion_tokens"]
    # One llama_decode call held both sequences, and the calls were fewer than the
    # tokens: taking turns needs at least one call per sampled token.
    assert stats["max_seqs_per_decode"] == 2, stats
    assert stats["decode_calls"] < generated, (stats, generated)


async def test_each_sequence_samples_with_its_own_seeded_sampler(make_engine: Any) -> None:
    engine = await make_engine(slots=2)
    seeded = ask("Tell me a story about a cat.", temperature=1.0, seed=42, max_tokens=24)
    alone, _, _ = await collect(engine, seeded)
    beside, other = await asyncio.gather(
        collect(engine, seeded),
        collect(engine, ask("Tell me a story about a cat.", temperature=1.0, seed=7,
                            max_tokens=24)))
    # A shared sampler (one RNG for the batch) would interleave draws and change the text.
    assert engine.describe()["max_seqs_per_decode"] == 2
    assert beside[0] == alone
    assert other[0] != alone


async def test_eight_requests_on_four_slots_all_complete(make_engine: Any) -> None:
    engine = await make_engine(slots=4, queue=4)
    results = await asyncio.gather(*[
        collect(engine, ask(f"Say something about the number {i}.", temperature=0,
                            max_tokens=16)) for i in range(8)])
    for _, last, _ in results:
        assert last.finish_reason in ("stop", "length")
        assert last.usage["completion_tokens"] >= 1
    stats = engine.describe()
    assert stats["completed"] == 8
    assert stats["active"] == 0
    generated = sum(last.usage["completion_tokens"] for _, last, _ in results)
    assert stats["max_seqs_per_decode"] >= 2, stats
    assert stats["decode_calls"] < generated, (stats, generated)
    # They share the template's system prompt: later ones reuse its KV cells.
    assert engine.describe()["cached_prompt_tokens"] > 0


async def test_full_queue_is_refused_with_busy(make_engine: Any) -> None:
    engine = await make_engine(slots=1, queue=1, max_tokens=400)
    long = ask("Write a very long essay about history.", temperature=0, max_tokens=400)
    first = engine.stream(long).__aiter__()
    second = engine.stream(long).__aiter__()
    try:
        await first.__anext__()
        waiting = asyncio.ensure_future(second.__anext__())
        # The second request holds the queue place once it is admitted.
        deadline = time.monotonic() + ADMIT_DEADLINE_S
        while engine.describe()["admitted"] < 2:
            assert time.monotonic() < deadline, engine.describe()
            await asyncio.sleep(0.01)
        with pytest.raises(LLMBusy) as busy:
            await engine.stream(long).__anext__()
        assert busy.value.retry_after_s > 0
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
    finally:
        await first.aclose()
        await second.aclose()


async def test_cancelled_stream_frees_its_slot(make_engine: Any) -> None:
    engine = await make_engine(slots=1, queue=0)
    stream = engine.stream(ask("Write a very long essay about history.", temperature=0,
                               max_tokens=1000)).__aiter__()
    await stream.__anext__()
    await stream.aclose()
    assert engine.describe()["cancelled"] == 1
    # With one slot and no queue, this only runs once the cancelled sequence left its slot.
    _, last, _ = await collect(engine, ask("Hi", temperature=0, max_tokens=4))
    assert last.finish_reason in ("stop", "length")
    assert engine.stats["completion_tokens"] < 1000


async def test_prompt_longer_than_the_context_is_refused(make_engine: Any) -> None:
    engine = await make_engine(context=512)
    with pytest.raises(PromptTooLong, match="context"):
        await engine.stream(ask("hello " * 600)).__anext__()


async def test_tool_calls_are_valid_json_matching_the_schema(make_engine: Any) -> None:
    engine = await make_engine(slots=4)
    prompts = ["What's the weather in Paris for 3 days?", "Weather in Tokyo tomorrow, in F?",
               "Start a timer for 5 minutes.", "Is it raining in Berlin this week?",
               "Remind me in 30 seconds to stir the soup.", "Forecast for Lima, 10 days.",
               "How cold is it in Oslo?", "Set a 90 second tea timer."]
    results = await asyncio.gather(*[
        collect(engine, ask(p, tools=TOOLS, tool_choice="required", temperature=0.8,
                            seed=i, max_tokens=160)) for i, p in enumerate(prompts)])
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    for text, last, _ in results:
        assert text == ""  # a tool call is not streamed as text
        assert last.finish_reason == "tool_calls", last
        (call,) = last.tool_calls
        assert call["type"] == "function" and call["id"].startswith("call_")
        args = json.loads(call["function"]["arguments"])
        jsonschema.validate(args, schemas[call["function"]["name"]])


async def test_named_tool_choice_forces_that_tool(make_engine: Any) -> None:
    engine = await make_engine()
    _, last, _ = await collect(engine, ask("What's the weather in Rome?", tools=TOOLS,
                                           tool_choice={"type": "function",
                                                        "function": {"name": "set_timer"}},
                                           temperature=0, max_tokens=80))
    assert last.tool_calls[0]["function"]["name"] == "set_timer"


async def test_response_format_json_schema_is_obeyed(make_engine: Any) -> None:
    engine = await make_engine()
    schema = {"type": "object", "properties": {"colors": {"type": "array",
                                                          "items": {"type": "string"},
                                                          "maxItems": 3}},
              "required": ["colors"]}
    text, last, _ = await collect(engine, ask(
        "List three colors.", temperature=0, max_tokens=80,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}}))
    assert last.finish_reason == "stop"
    jsonschema.validate(json.loads(text), schema)


async def test_event_loop_runs_callbacks_during_every_decode(
        make_engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before each llama_decode, a callback must run on the loop: impossible if it blocked."""
    import llama_cpp

    engine = await make_engine()
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    real_decode = llama_cpp.llama_decode
    decodes: list[bool] = []

    def decode_after_a_loop_callback(ctx: Any, batch: Any) -> int:
        ran = threading.Event()
        on_loop = threading.get_ident() == loop_thread
        if not on_loop:
            loop.call_soon_threadsafe(ran.set)
            ran.wait(LOOP_CALLBACK_DEADLINE_S)
        decodes.append(not on_loop and ran.is_set())
        return int(real_decode(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", decode_after_a_loop_callback)
    _, last, times = await collect(engine, ask("Describe the moon.", temperature=0,
                                               max_tokens=32))
    # One decode per sampled token: the loop ran a callback between every two tokens.
    assert len(decodes) >= last.usage["completion_tokens"] > 1
    assert len(times) > 1
    assert all(decodes), decodes


async def test_a_huge_string_bound_still_gives_a_valid_tool_call(make_engine: Any) -> None:
    """A schema's maxLength of 50000 would expand into 50000 grammar rules; it is tightened."""
    engine = await make_engine()
    tools = [{"type": "function", "function": {
        "name": "run_shell", "description": "Run a shell command.",
        "parameters": {"type": "object", "required": ["command"], "properties": {
            "command": {"type": "string", "maxLength": 50000}}}}}]
    _, last, _ = await collect(engine, ask("List the files in /tmp.", tools=tools,
                                           tool_choice="required", temperature=0,
                                           max_tokens=80))
    (call,) = last.tool_calls
    args = json.loads(call["function"]["arguments"])
    jsonschema.validate(args, tools[0]["function"]["parameters"])
    assert engine.healthy()


async def test_an_impossible_string_minimum_is_a_clear_error(make_engine: Any) -> None:
    engine = await make_engine()
    tools = [{"type": "function", "function": {
        "name": "essay", "parameters": {"type": "object", "properties": {
            "text": {"type": "string", "minLength": 20000}}}}}]
    with pytest.raises(InvalidRequest, match="minLength of 20000"):
        await collect(engine, ask("Write.", tools=tools, tool_choice="required"))
