"""The OpenAI-compatible API: POST /v1/chat/completions (SSE or one object), GET /v1/models.

Every request goes through the component "llm_router", so a client on any
node gets an answer wherever the model runs. A request forwarded by another
node's router (it carries the hop header) is answered from the local model
only. Errors use OpenAI's error shape; an error after streaming began is sent
as a final ``data: {"error": ...}`` event, never as a silent truncation. A
streamed answer from a peer is relayed as the peer's own SSE bytes (its ids and
model name included), which keeps the hop between boxes short.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

from appliance.llm.chat import ChatChunk, ChatRequest, LLMBusy, LLMError
from appliance.llm.client import HOP_HEADER
from appliance.security.guard import is_loopback
from appliance.web.app import NODE
from appliance.web.bodies import BODY_RULES, set_body_limit
from appliance.web.errors import ApiError, read_json

log = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant", "tool", "developer")
MAX_MESSAGES = 1000
MAX_STOP = 4
MAX_CONVERSATION_ID = 128
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def setup(app: web.Application) -> None:
    """Add the /v1 routes."""
    app.router.add_post("/v1/chat/completions", chat_completions)
    set_body_limit(app, "POST", "/v1/chat/completions",
                   max(app[BODY_RULES].default_bytes, 2 * app[NODE].config.llm.max_prompt_bytes),
                   setting="llm.max_prompt_bytes")
    app.router.add_get("/v1/models", models)


async def models(request: web.Request) -> web.Response:
    router = _router(request)
    created = int(time.time())
    data = [{"id": mid, "object": "model", "created": created, "owned_by": "hybrid-agent"}
            for mid in ["default", *router.model_ids()]]
    return web.json_response({"object": "list", "data": data})


async def chat_completions(request: web.Request) -> web.StreamResponse:
    router = _router(request)
    body = await read_json(request)
    chat, stream, include_usage = parse_request(body, request.headers)
    local_only = request.headers.get(HOP_HEADER) is not None
    # A streamed answer from a peer passes through as the peer's own bytes (the short hop).
    relay = await request.read() if stream and not local_only else None
    chunks = router.stream(chat, local_only=local_only, relay=relay).__aiter__()
    try:
        # Wait for the first chunk before answering, so errors get their real status.
        try:
            first = await chunks.__anext__()
        except LLMError as exc:
            raise _api_error(exc) from None
        except StopAsyncIteration:
            raise ApiError(502, "the model produced no answer", code="empty_answer") from None
        if isinstance(first, bytes):
            return await _relay(request, chunks, first)
        cid = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        model = chat.model if chat.model != "default" else _model_name(router, first)
        if stream:
            return await _stream(request, chunks, first, cid, created, model, include_usage)
        return await _complete(chunks, first, cid, created, model)
    finally:
        await chunks.aclose()


def parse_request(body: Any, headers: Any = None) -> tuple[ChatRequest, bool, bool]:
    """The validated ChatRequest, whether to stream, whether to send usage when streaming."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_request")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list", param="messages",
                       code="invalid_request")
    if len(messages) > MAX_MESSAGES:
        raise ApiError(400, f"messages has {len(messages)} entries; at most {MAX_MESSAGES}",
                       param="messages", code="invalid_request")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise ApiError(400, f"messages[{i}] must be an object with role one of {ROLES}",
                           param=f"messages[{i}]", code="invalid_request")
        content = m.get("content")
        if content is not None and not isinstance(content, str | list):
            raise ApiError(400, f"messages[{i}].content must be a string or a list of parts",
                           param=f"messages[{i}].content", code="invalid_request")
    model = _typed(body, "model", str, "default") or "default"
    max_tokens = _typed(body, "max_completion_tokens", int, None)
    max_tokens = _typed(body, "max_tokens", int, max_tokens)
    if max_tokens is not None and max_tokens < 1:
        raise ApiError(400, "max_tokens must be at least 1", param="max_tokens",
                       code="invalid_request")
    temperature = float(_typed(body, "temperature", (int, float), 1.0))
    if not 0.0 <= temperature <= 2.0:
        raise ApiError(400, "temperature must be between 0 and 2", param="temperature",
                       code="invalid_request")
    top_p = float(_typed(body, "top_p", (int, float), 1.0))
    if not 0.0 < top_p <= 1.0:
        raise ApiError(400, "top_p must be in (0, 1]", param="top_p", code="invalid_request")
    seed = _typed(body, "seed", int, None)
    stop = body.get("stop")
    stops: tuple[str, ...]
    if stop is None:
        stops = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) \
            and len(stop) <= MAX_STOP:
        stops = tuple(stop)
    else:
        raise ApiError(400, f"stop must be a string or a list of at most {MAX_STOP} strings",
                       param="stop", code="invalid_request")
    n = _typed(body, "n", int, 1)
    if n != 1:
        raise ApiError(400, "only n=1 is supported", param="n", code="invalid_request")
    tools = _typed(body, "tools", list, None)
    tool_choice = body.get("tool_choice")
    if tool_choice is not None and not isinstance(tool_choice, str | dict):
        raise ApiError(400, "tool_choice must be a string or an object", param="tool_choice",
                       code="invalid_request")
    response_format = _typed(body, "response_format", dict, None)
    stream = bool(_typed(body, "stream", bool, False))
    options = _typed(body, "stream_options", dict, None) or {}
    conversation = _typed(body, "conversation_id", str, None) or (
        headers.get("X-Conversation-Id") if headers is not None else None)
    if conversation is not None and len(conversation) > MAX_CONVERSATION_ID:
        raise ApiError(400, f"conversation_id is longer than {MAX_CONVERSATION_ID} characters",
                       param="conversation_id", code="invalid_request")
    chat = ChatRequest(messages=messages, model=model, max_tokens=max_tokens,
                       temperature=temperature, top_p=top_p, seed=seed, stop=stops,
                       tools=tools or None, tool_choice=tool_choice,
                       response_format=response_format, conversation_id=conversation)
    return chat, stream, bool(options.get("include_usage"))


# ---------------------------------------------------------------- helpers


def _router(request: web.Request) -> Any:
    node = request.app[NODE]
    router = node.get("llm_router")
    if router is None:
        raise ApiError(503, "this node has no LLM (llm.mode is off)", code="no_llm_available")
    if not node.config.llm.serve and not is_loopback(request.remote):
        raise ApiError(403, "this node does not serve its LLM to the LAN (llm.serve is false)",
                       code="not_served")
    return router


async def _stream(request: web.Request, chunks: Any, first: ChatChunk, cid: str,
                  created: int, model: str, include_usage: bool) -> web.StreamResponse:
    return await _send_sse(request, _frames(chunks, first, cid, created, model, include_usage))


async def _relay(request: web.Request, chunks: Any, first: bytes) -> web.StreamResponse:
    """A peer's SSE answer, byte for byte (whole events, as ``RemoteClient.relay`` cuts them)."""

    async def events() -> AsyncGenerator[bytes, None]:
        yield first
        async for piece in chunks:
            yield piece

    return await _send_sse(request, events())


async def _send_sse(request: web.Request,
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
            await resp.write(_error_event(exc))
    except ConnectionError:
        log.info("client went away during a stream; its sequence is cancelled")
        return resp
    finally:
        await events.aclose()
    await resp.write_eof()
    return resp


async def _frames(chunks: Any, first: ChatChunk, cid: str, created: int, model: str,
                  include_usage: bool) -> AsyncGenerator[bytes, None]:
    """Our own answer as OpenAI's SSE frames. The frames of one model chunk come as one
    piece (one write): the role frame with the first content, the finish frames with
    [DONE]; fewer segments, fewer wake-ups downstream."""
    pending: list[bytes] = []

    def add(obj: dict[str, Any] | None) -> None:
        pending.append(b"data: " + (json.dumps(obj).encode() if obj else b"[DONE]") + b"\n\n")

    def frame(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"id": cid, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}]}

    add(frame({"role": "assistant", "content": ""}, None))
    chunk: ChatChunk | None = first
    while chunk is not None:
        if chunk.content:
            add(frame({"content": chunk.content}, None))
        if chunk.finish_reason:
            if chunk.tool_calls:
                calls = [{"index": i, **c} for i, c in enumerate(chunk.tool_calls)]
                add(frame({"tool_calls": calls}, None))
            add(frame({}, chunk.finish_reason))
            if include_usage and chunk.usage:
                add({"id": cid, "object": "chat.completion.chunk", "created": created,
                     "model": model, "choices": [], "usage": chunk.usage})
            add(None)
            yield b"".join(pending)
            return
        if pending:
            data = b"".join(pending)
            pending.clear()
            yield data
        chunk = await anext(chunks, None)
    raise LLMError("the answer ended without a finish_reason")


def _error_event(exc: LLMError) -> bytes:
    err = {"message": str(exc), "type": "server_error", "param": None, "code": exc.code}
    return b"data: " + json.dumps({"error": err}).encode() + b"\n\n"


async def _complete(chunks: Any, first: ChatChunk, cid: str, created: int,
                    model: str) -> web.Response:
    text: list[str] = []
    last = first
    try:
        chunk: ChatChunk | None = first
        while chunk is not None:
            text.append(chunk.content)
            last = chunk
            if chunk.finish_reason:
                break
            chunk = await chunks.__anext__()
    except LLMError as exc:
        raise _api_error(exc) from None
    except StopAsyncIteration:
        raise ApiError(502, "the answer ended without a finish_reason",
                       code="stream_interrupted") from None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if last.tool_calls:
        message["tool_calls"] = last.tool_calls
    elif message["content"] is None:
        message["content"] = ""
    return web.json_response({
        "id": cid, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": last.finish_reason,
                     "logprobs": None}],
        "usage": last.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "system_fingerprint": last.served_by or None,
    })


def _api_error(exc: LLMError) -> ApiError:
    headers = None
    if isinstance(exc, LLMBusy):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    return ApiError(exc.status, str(exc), code=exc.code, headers=headers)


def _model_name(router: Any, first: ChatChunk) -> str:
    ids = router.model_ids()
    return ids[0] if ids else "default"


def _typed(body: dict[str, Any], key: str, kind: Any, default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise ApiError(400, f"{key} has the wrong type", param=key, code="invalid_request")
    return value
