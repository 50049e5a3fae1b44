"""POST /api/chat: one agent turn, streamed as Server-Sent Events.

Body ``{"text": str, "conversation_id"?: str, "agent"?: str}``; the answer is
``text/event-stream`` with one SSE message per AgentEvent (``event:`` is the
type: thought, tool_call, tool_result, token, final, error; ``data:`` its JSON).
A client that disconnects ends the turn.
"""

from __future__ import annotations

import contextlib
import re

from aiohttp import web

from appliance.agent.loop import Agent, AgentError
from appliance.agent.memory import MAX_CONVERSATION_ID_CHARS
from appliance.web import owners
from appliance.web.app import NODE
from appliance.web.bodies import json_text_limit, read_json, set_body_limit
from appliance.web.errors import ApiError

_ID = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{MAX_CONVERSATION_ID_CHARS}}}$")


def setup(app: web.Application) -> None:
    app.router.add_post("/api/chat", chat)
    set_body_limit(app, "POST", "/api/chat",
                   json_text_limit(app[NODE].config.agent.max_text_chars),
                   setting="agent.max_text_chars")


async def chat(request: web.Request) -> web.StreamResponse:
    agent: Agent | None = request.app[NODE].get("agent")
    if agent is None:
        raise ApiError(503, "the agent is off on this node", code="agent_off")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, 'body must be a JSON object {"text": ...}', code="invalid_request")
    unknown = set(body) - {"text", "conversation_id", "agent"}
    if unknown:
        raise ApiError(400, f"unknown field(s): {', '.join(sorted(unknown))}",
                       code="invalid_request", param=sorted(unknown)[0])
    text = body.get("text")
    limit = agent.cfg.max_text_chars
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "text must be a non-empty string", code="invalid_request",
                       param="text")
    if len(text) > limit:
        raise ApiError(400, f"text is longer than {limit} characters", code="text_too_long",
                       param="text")
    cid = body.get("conversation_id")
    if cid is not None and (not isinstance(cid, str) or not _ID.fullmatch(cid)):
        raise ApiError(400, f"conversation_id must be 1-{MAX_CONVERSATION_ID_CHARS} characters "
                            "of A-Z a-z 0-9 _ . : -", code="invalid_request",
                       param="conversation_id")
    cid = owners.claim(request, cid)  # the caller's own conversation, or a new one
    name = body.get("agent")
    if name is not None and not isinstance(name, str):
        raise ApiError(400, "agent must be a string", code="invalid_request", param="agent")
    try:
        agent.profile(name)
    except AgentError as exc:
        raise ApiError(exc.status, str(exc), code=exc.code, param="agent") from None
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    events = agent.run(text, cid, name)
    try:
        async for event in events:
            await resp.write(event.sse())
    except ConnectionResetError:
        pass  # the client left; closing the generator cancels the turn
    finally:
        with contextlib.suppress(Exception):
            await events.aclose()  # type: ignore[attr-defined]
    return resp
