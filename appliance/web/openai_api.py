"""The OpenAI-compatible API: chat completions, legacy completions, embeddings, models.

Every request goes through the component "llm_router", so a client on any node
gets an answer wherever the model runs. A request forwarded by another node's
router (it carries the hop header) is answered from the local model only.
Errors use OpenAI's error shape (with ``param`` naming the field at fault). A
single streamed answer from a peer is relayed as the peer's own SSE bytes (its
ids and model name included), which keeps the hop between boxes short. Where
this server differs from OpenAI and llama-server is in docs/api.md.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import AsyncGenerator
from typing import Any

from aiohttp import web

from appliance.llm.chat import ChatChunk, LLMError
from appliance.llm.client import HOP_HEADER
from appliance.web.access import is_peer
from appliance.web.app import NODE
from appliance.web.bodies import BODY_RULES, read_json, set_body_limit
from appliance.web.errors import ApiError
from appliance.web.openai_answer import (
    Opened,
    Shape,
    api_error,
    collect,
    open_choices,
    send_sse,
    send_stream,
)
from appliance.web.openai_request import (
    Generation,
    parse_chat,
    parse_completion,
    parse_embeddings,
)


def setup(app: web.Application) -> None:
    """Add the /v1 routes."""
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
        set_body_limit(app, "POST", path, max(app[BODY_RULES].default_bytes,
                                              2 * app[NODE].config.llm.max_prompt_bytes),
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
    gen = parse_chat(await read_json(request), request.headers)
    return await _generate(request, router, gen, "chat")


async def completions(request: web.Request) -> web.StreamResponse:
    router = _router(request)
    gen = parse_completion(await read_json(request))
    return await _generate(request, router, gen, "text")


async def embeddings(request: web.Request) -> web.Response:
    router = _router(request)
    texts, model, fmt = parse_embeddings(await read_json(request))
    local_only = request.headers.get(HOP_HEADER) is not None
    try:
        vectors, tokens = await router.embed(texts, model, local_only=local_only)
    except LLMError as exc:
        raise api_error(exc) from None
    data = [{"object": "embedding", "index": i, "embedding": _encoded(v, fmt)}
            for i, v in enumerate(vectors)]
    name = model if model != "default" else (router.model_ids() or ["default"])[0]
    return web.json_response({"object": "list", "data": data, "model": name,
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


# ---------------------------------------------------------------- helpers


async def _generate(request: web.Request, router: Any, gen: Generation,
                    kind: str) -> web.StreamResponse:
    local_only = request.headers.get(HOP_HEADER) is not None
    if gen.stream and len(gen.requests) == 1 and gen.echo is None and not local_only:
        # One streamed answer: a peer's passes through as its own bytes (the short hop);
        # the local model's chunks are framed as usual.
        pieces = router.relay(gen.requests[0], await request.read()).__aiter__()
        try:
            first = await _first_piece(pieces)
        except BaseException:
            await pieces.aclose()
            raise
        if isinstance(first, bytes):
            return await send_sse(request, _chain(first, pieces))
        opened = Opened([pieces], [first])
    else:
        opened = await open_choices([router.stream(r, local_only=local_only)
                                     for r in gen.requests])
    try:
        model = gen.requests[0].model
        if model == "default":
            ids = router.model_ids()
            model = ids[0] if ids else "default"
        shape = Shape(kind, model, gen)
        if gen.stream:
            return await send_stream(request, shape, opened)
        return await collect(shape, opened)
    finally:
        await opened.close()


async def _first_piece(pieces: Any) -> ChatChunk | bytes:
    try:
        first: ChatChunk | bytes = await anext(pieces)
    except LLMError as exc:
        raise api_error(exc) from None
    except StopAsyncIteration:
        raise ApiError(502, "the model produced no answer", code="empty_answer") from None
    return first


async def _chain(first: bytes, rest: Any) -> AsyncGenerator[bytes, None]:
    try:
        yield first
        async for piece in rest:
            yield piece
    finally:
        await rest.aclose()


def _router(request: web.Request) -> Any:
    node = request.app[NODE]
    router = node.get("llm_router")
    if router is None:
        raise ApiError(503, "this node has no LLM (llm.mode is off)", code="no_llm_available")
    if not node.config.llm.serve and is_peer(request):
        raise ApiError(403, "this node does not serve its LLM to the LAN (llm.serve is false)",
                       code="not_served")
    return router


def _encoded(vector: list[float], fmt: str) -> Any:
    if fmt == "base64":  # little-endian float32, as OpenAI's clients decode it
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector
