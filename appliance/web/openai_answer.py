"""Answers of the OpenAI API from the router's chunks: SSE frames or one JSON object.

One choice streams as the chunks come; ``n`` choices (or several completion
prompts) are generated concurrently and their frames interleave, each with its
``index``, as OpenAI's do. An error after the first byte is sent in the stream as
a final ``data: {"error": ...}`` event, never as a silent truncation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance.llm.chat import ChatChunk, LLMBusy, LLMError
from appliance.web.errors import ApiError
from appliance.web.openai_request import Generation

log = logging.getLogger(__name__)

SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
DONE = b"data: [DONE]\n\n"


@dataclass
class Opened:
    """Choice streams whose first chunk has arrived (so errors got their real status)."""

    streams: list[AsyncIterator[ChatChunk]]
    firsts: list[ChatChunk]

    async def close(self) -> None:
        for agen in self.streams:
            with contextlib.suppress(Exception):
                await agen.aclose()  # type: ignore[attr-defined]


async def open_choices(streams: list[AsyncIterator[ChatChunk]]) -> Opened:
    """Wait for every choice's first chunk; an LLMError before any is an ApiError."""
    opened = Opened(streams, [])
    try:
        firsts = await asyncio.gather(*(_first(s) for s in streams))
    except BaseException:
        await opened.close()
        raise
    opened.firsts = list(firsts)
    return opened


def api_error(exc: LLMError) -> ApiError:
    headers = None
    if isinstance(exc, LLMBusy):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    return ApiError(exc.status, str(exc), code=exc.code, param=exc.param, headers=headers)


class Shape:
    """How one API writes its objects: chat completions or legacy text completions."""

    def __init__(self, kind: str, model: str, gen: Generation) -> None:
        self.chat = kind == "chat"
        self.id = ("chatcmpl-" if self.chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self.model = model
        self.gen = gen

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        obj = {"id": self.id, "object": "chat.completion.chunk" if self.chat
               else "text_completion", "created": self.created, "model": self.model,
               "choices": choices, **extra}
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    def delta(self, index: int, chunk: ChatChunk | None, *, first: bool = False,
              text: str = "") -> dict[str, Any]:
        """One choice's piece: its text (and logprobs), no finish."""
        content = text + (chunk.content if chunk else "")
        logprobs = self.logprobs(chunk.logprobs if chunk else None)
        if self.chat:
            delta: dict[str, Any] = {"content": content}
            if first:
                delta = {"role": "assistant", "content": content}
            return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": None}
        return {"text": content, "index": index, "logprobs": logprobs, "finish_reason": None}

    def finish(self, index: int, chunk: ChatChunk) -> list[dict[str, Any]]:
        out = []
        if self.chat and chunk.tool_calls:
            calls = [{"index": i, **c} for i, c in enumerate(chunk.tool_calls)]
            out.append({"index": index, "delta": {"tool_calls": calls}, "logprobs": None,
                        "finish_reason": None})
        if self.chat:
            out.append({"index": index, "delta": {}, "logprobs": None,
                        "finish_reason": chunk.finish_reason})
        else:
            out.append({"text": "", "index": index, "logprobs": None,
                        "finish_reason": chunk.finish_reason})
        return out

    def logprobs(self, entries: list[dict[str, Any]] | None) -> dict[str, Any] | None:
        if entries is None or not self.gen.requests[0].logprobs:
            return None
        if self.chat:
            return {"content": entries}
        return {"tokens": [e["token"] for e in entries],
                "token_logprobs": [e["logprob"] for e in entries],
                "top_logprobs": [{t["token"]: t["logprob"] for t in e.get("top_logprobs", [])}
                                 for e in entries],
                "text_offset": []}

    def usage(self, finals: list[ChatChunk | None]) -> dict[str, Any]:
        """Usage over all choices: each prompt counted once, completions summed."""
        prompt = cached = completion = 0
        for i, chunk in enumerate(finals):
            u = (chunk.usage if chunk else None) or {}
            completion += int(u.get("completion_tokens", 0))
            if i % self.gen.n == 0:
                prompt += int(u.get("prompt_tokens", 0))
                cached += int((u.get("prompt_tokens_details") or {}).get("cached_tokens", 0))
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": cached}}


async def send_stream(request: web.Request, shape: Shape, opened: Opened) -> web.StreamResponse:
    """Every choice's frames as they come, then usage (if asked) and [DONE]."""
    return await send_sse(request, _frames(shape, opened))


async def send_sse(request: web.Request,
                   events: AsyncGenerator[bytes, None]) -> web.StreamResponse:
    """Write whole SSE events as they come. A failure once the headers are gone is said in
    the stream, explicitly, then the stream ends (unless the peer's own error event
    already went out); a client that went away ends it at once."""
    resp = web.StreamResponse(headers=SSE_HEADERS)
    await resp.prepare(request)
    try:
        async for data in events:
            await resp.write(data)
    except LLMError as exc:
        log.warning("llm stream failed after its first token: %s", exc)
        if not getattr(exc, "reported", False):
            await resp.write(error_event(exc))
    except ConnectionError:
        log.info("client went away during a stream; its sequence is cancelled")
        return resp
    finally:
        await events.aclose()
    await resp.write_eof()
    return resp


async def collect(shape: Shape, opened: Opened) -> web.Response:
    """One JSON object with every choice complete."""
    try:
        results = await asyncio.gather(*(_whole(s, f) for s, f in
                                         zip(opened.streams, opened.firsts, strict=True)))
    except LLMError as exc:
        raise api_error(exc) from None
    choices = []
    for i, (text, entries, last) in enumerate(results):
        if shape.gen.echo is not None:
            text = shape.gen.echo[i] + text
        logprobs = shape.logprobs(entries)
        if shape.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if last.tool_calls:
                message["tool_calls"] = last.tool_calls
            elif message["content"] is None:
                message["content"] = ""
            choices.append({"index": i, "message": message, "logprobs": logprobs,
                            "finish_reason": last.finish_reason})
        else:
            choices.append({"text": text, "index": i, "logprobs": logprobs,
                            "finish_reason": last.finish_reason})
    return web.json_response({
        "id": shape.id, "object": "chat.completion" if shape.chat else "text_completion",
        "created": shape.created, "model": shape.model, "choices": choices,
        "usage": shape.usage([r[2] for r in results]),
        "system_fingerprint": results[0][2].served_by or None,
    })


def error_event(exc: LLMError) -> bytes:
    err = {"message": str(exc), "type": "server_error", "param": None, "code": exc.code}
    return b"data: " + json.dumps({"error": err}).encode() + b"\n\n"


# ---------------------------------------------------------------- internals


async def _first(stream: AsyncIterator[ChatChunk]) -> ChatChunk:
    try:
        return await anext(stream)
    except LLMError as exc:
        raise api_error(exc) from None
    except StopAsyncIteration:
        raise ApiError(502, "the model produced no answer", code="empty_answer") from None


async def _whole(stream: AsyncIterator[ChatChunk],
                 first: ChatChunk) -> tuple[str, list[dict[str, Any]], ChatChunk]:
    text: list[str] = []
    entries: list[dict[str, Any]] = []
    chunk: ChatChunk | None = first
    while chunk is not None:
        text.append(chunk.content)
        entries += chunk.logprobs or []
        if chunk.finish_reason:
            return "".join(text), entries, chunk
        chunk = await anext(stream, None)
    raise ApiError(502, "the answer ended without a finish_reason", code="stream_interrupted")


async def _frames(shape: Shape, opened: Opened) -> AsyncGenerator[bytes, None]:
    """The frames of all choices. The frames of one model chunk come as one piece (one
    write): the role frame with the first content, the finish frames with [DONE]."""
    count = len(opened.streams)
    finals: list[ChatChunk | None] = [None] * count
    queue: asyncio.Queue[tuple[int, ChatChunk | BaseException | None]] = asyncio.Queue()

    async def pump(i: int) -> None:
        try:
            async for chunk in opened.streams[i]:
                await queue.put((i, chunk))
            await queue.put((i, None))
        except BaseException as exc:  # handed to the writer, which raises it
            await queue.put((i, exc))

    pending: list[bytes] = []
    for i, first in enumerate(opened.firsts):
        echo = shape.gen.echo[i] if shape.gen.echo is not None else ""
        pending.append(shape.chunk([shape.delta(i, first, first=True, text=echo)]))
        if first.finish_reason:
            finals[i] = first
            pending.append(shape.chunk(shape.finish(i, first)))
    tasks = [asyncio.create_task(pump(i)) for i in range(count) if finals[i] is None]
    try:
        open_ = len(tasks)
        while open_:
            yield b"".join(pending)
            pending.clear()
            i, item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                open_ -= 1
                if finals[i] is None:
                    raise LLMError("the answer ended without a finish_reason")
                continue
            if item.content or item.logprobs:
                pending.append(shape.chunk([shape.delta(i, item)]))
            if item.finish_reason:
                finals[i] = item
                pending.append(shape.chunk(shape.finish(i, item)))
        if shape.gen.include_usage:
            pending.append(shape.chunk([], usage=shape.usage(finals)))
        pending.append(DONE)
        yield b"".join(pending)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await opened.close()
