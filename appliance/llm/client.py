"""A remote OpenAI-compatible endpoint as an LLMClient: streaming over aiohttp, bounded waits.

Three timeouts guard every request: connecting, the first token, and the gap
between tokens. A failure before anything was yielded raises
:class:`PeerFailed` (the router then tries the next endpoint); a failure after
raises :class:`StreamInterrupted`, so a truncated answer is never mistaken for a
complete one. Requests carry :data:`HOP_HEADER`, so the peer answers from its
own model instead of routing again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from appliance.llm.chat import (
    ChatChunk,
    ChatRequest,
    InvalidRequest,
    LLMError,
    PromptTooLong,
    StreamInterrupted,
    UnknownModel,
)

log = logging.getLogger(__name__)

HOP_HEADER = "X-Hybrid-Agent-Hop"
CHAT_PATH = "/v1/chat/completions"
# Largest SSE line and error body accepted from a peer.
MAX_LINE_BYTES = 1024 * 1024
MAX_ERROR_BYTES = 64 * 1024

Signer = Callable[[str, str, bytes], Mapping[str, str]]


class PeerFailed(LLMError):
    """The endpoint failed before its first token; another one may be tried."""

    status = 502
    code = "peer_failed"


@dataclass(frozen=True)
class Timeouts:
    """How long a remote endpoint may take."""

    connect_s: float = 2.0
    first_token_s: float = 30.0
    idle_s: float = 30.0


def base_url(url: str) -> str:
    """An endpoint's base URL without a trailing slash or ``/v1``; ValueError when not http(s)."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) > 2048:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url[:-3] if url.endswith("/v1") else url


class RemoteClient:
    """One remote endpoint, reached through ``session``."""

    def __init__(self, name: str, url: str, session: aiohttp.ClientSession, *,
                 timeouts: Timeouts = Timeouts(), signer: Signer | None = None,
                 models: list[str] | None = None) -> None:
        self.name = name
        self.url = base_url(url)
        self._session = session
        self._timeouts = timeouts
        self._signer = signer
        self._models = list(models or [])

    def model_ids(self) -> list[str]:
        return list(self._models)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Stream the peer's answer (see the module doc for the errors)."""
        body = json.dumps(_payload(request)).encode()
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream",
                   HOP_HEADER: "1"}
        if self._signer is not None:
            try:
                headers.update(self._signer("POST", CHAT_PATH, body))
            except Exception as exc:  # no cluster key: loopback peers still answer unsigned
                log.debug("sending an unsigned request to %s: %s", self.name, exc)
        t = self._timeouts
        timeout = aiohttp.ClientTimeout(total=None, connect=t.connect_s, sock_connect=t.connect_s)
        yielded = False
        try:
            async with asyncio.timeout(t.connect_s + t.first_token_s):
                resp = await self._session.post(self.url + CHAT_PATH, data=body,
                                                headers=headers, timeout=timeout)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise PeerFailed(f"{self.name} ({self.url}) cannot be reached: "
                             f"{_describe(exc)}") from None
        async with resp:
            if resp.status != 200:
                await self._raise_for(resp)
            try:
                async for chunk in self._events(resp):
                    yielded = True
                    yield chunk
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                what = f"{self.name} ({self.url}) failed: {_describe(exc)}"
                if yielded:
                    raise StreamInterrupted(what + "; the answer is incomplete") from None
                raise PeerFailed(what) from None
            except PeerFailed as exc:
                if yielded:
                    raise StreamInterrupted(f"{exc}; the answer is incomplete") from None
                raise

    async def _events(self, resp: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
        t = self._timeouts
        calls: dict[int, dict[str, Any]] = {}
        final: ChatChunk | None = None
        started = False
        while True:
            async with asyncio.timeout(t.idle_s if started else t.first_token_s):
                line = await resp.content.readline()
            if not line:
                raise PeerFailed(f"{self.name} closed the stream before [DONE]")
            if len(line) > MAX_LINE_BYTES:
                raise ValueError(f"an event line of {len(line)} bytes")
            text = line.decode(errors="replace").strip()
            if not text.startswith("data:"):
                continue
            data = text[5:].strip()
            if data == "[DONE]":
                if final is None:
                    raise PeerFailed(f"{self.name} ended the stream without a finish_reason")
                yield final
                return
            obj = json.loads(data)
            if not isinstance(obj, dict):
                raise ValueError("an event that is not a JSON object")
            if "error" in obj:
                err = obj["error"] if isinstance(obj["error"], dict) else {}
                raise PeerFailed(f"{self.name} reported: {err.get('message', obj['error'])}")
            started = True
            usage = obj.get("usage")
            if final is not None and usage:
                final = ChatChunk(content=final.content, tool_calls=final.tool_calls,
                                  finish_reason=final.finish_reason, usage=usage,
                                  served_by=self.name)
            for choice in obj.get("choices") or []:
                delta = choice.get("delta") or {}
                for tc in delta.get("tool_calls") or []:
                    slot = calls.setdefault(int(tc.get("index", 0)), {
                        "id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                    slot["id"] = tc.get("id") or slot["id"]
                    fn = tc.get("function") or {}
                    slot["function"]["name"] += fn.get("name") or ""
                    slot["function"]["arguments"] += fn.get("arguments") or ""
                content = delta.get("content") or ""
                if choice.get("finish_reason"):
                    tool_calls = [calls[i] for i in sorted(calls)] or None
                    final = ChatChunk(content=content, tool_calls=tool_calls,
                                      finish_reason=choice["finish_reason"],
                                      usage=usage or None, served_by=self.name)
                elif content:
                    yield ChatChunk(content=content, served_by=self.name)

    async def _raise_for(self, resp: aiohttp.ClientResponse) -> None:
        raw = await resp.content.read(MAX_ERROR_BYTES)
        try:
            err = json.loads(raw)["error"]
            message = str(err.get("message"))
        except (ValueError, KeyError, TypeError, AttributeError):
            message = raw[:200].decode(errors="replace")
        where = f"{self.name}: {message}"
        # The caller's own mistakes come back as they are; anything else is the peer's failure.
        if resp.status == 404:
            raise UnknownModel(where)
        if resp.status == 400:
            prompt = "context" in message or "prompt" in message
            raise (PromptTooLong(where) if prompt else InvalidRequest(where))
        raise PeerFailed(f"{self.name} answered {resp.status}: {message}")


def _payload(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "messages": request.messages,
                            "stream": True, "stream_options": {"include_usage": True},
                            "temperature": request.temperature, "top_p": request.top_p}
    optional = {"max_tokens": request.max_tokens, "seed": request.seed,
                "tools": request.tools, "tool_choice": request.tool_choice,
                "response_format": request.response_format,
                "conversation_id": request.conversation_id}
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
