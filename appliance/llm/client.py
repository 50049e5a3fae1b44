"""A remote OpenAI-compatible endpoint as an LLMClient: streaming over HTTP/1.1, bounded waits.

Three timeouts guard every request: connecting, the first token, and the gap
between tokens. A failure before anything was yielded raises
:class:`PeerFailed` (the router then tries the next endpoint); a failure after
raises :class:`StreamInterrupted`, so a truncated answer is never mistaken for a
complete one. Requests carry :data:`HOP_HEADER`, so the peer answers from its
own model instead of routing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from appliance.llm.chat import (
    ChatChunk,
    ChatRequest,
    InvalidRequest,
    LLMError,
    PromptTooLong,
    StreamInterrupted,
    UnknownModel,
)
from appliance.net import sse
from appliance.net import text as peer_text
from appliance.net.http1 import Origin, Pool, Response
from appliance.net.peer import Signer
from appliance.security.errors import SecurityError

log = logging.getLogger(__name__)

HOP_HEADER = "X-Hybrid-Agent-Hop"
CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
# Largest embeddings answer accepted from a peer (256 inputs of 4096 floats as JSON).
MAX_EMBEDDINGS_BYTES = 32 * 1024 * 1024
# Largest SSE line and error body accepted from a peer.
MAX_LINE_BYTES = sse.MAX_LINE_BYTES
MAX_ERROR_BYTES = 64 * 1024
# How an SSE error event starts (the API's own: ``data: {"error": ...}``), and the end.
ERROR_EVENT = b'data: {"error"'
DONE_EVENT = re.compile(rb"data: ?\[DONE\]")
# After [DONE]: how long and how much of the body's rest is read so the connection is reused.
DRAIN_S = 1.0
DRAIN_BYTES = 64 * 1024



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
    """One remote endpoint, reached through the connection ``pool``."""

    def __init__(self, name: str, url: str, pool: Pool, *,
                 timeouts: Timeouts = Timeouts(), signer: Signer | None = None,
                 models: list[str] | None = None, peer_id: str | None = None) -> None:
        self.name = name
        #: The node expected at ``url`` (None: whichever node of the cluster answers there).
        self.peer_id = peer_id
        self.url = base_url(url)
        self._origin = Origin.parse(self.url)
        self._prefix = urlsplit(self.url).path
        self._pool = pool
        self._timeouts = timeouts
        self._signer = signer
        self._models = list(models or [])

    def model_ids(self) -> list[str]:
        return list(self._models)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Stream the peer's answer (see the module doc for the errors)."""
        path = CHAT_PATH if request.prompt is None else COMPLETIONS_PATH
        resp = await self._open(json.dumps(_payload(request)).encode(), path)
        yielded = False
        try:
            async for chunk in self._events(resp):
                yielded = True
                yield chunk
        except (OSError, TimeoutError, ValueError) as exc:
            raise self._broken(yielded, f"failed: {_describe(exc)}") from None
        except PeerFailed as exc:
            if yielded:
                raise StreamInterrupted(f"{exc}; the answer is incomplete") from None
            raise
        finally:
            resp.release()

    async def embed(self, texts: list[str], model: str) -> tuple[list[list[float]], int]:
        """The peer's embeddings of ``texts`` (PeerFailed when it cannot give them)."""
        body = json.dumps({"model": model, "input": texts}).encode()
        resp = await self._open(body, EMBEDDINGS_PATH)
        try:
            async with asyncio.timeout(self._timeouts.first_token_s):
                raw = await resp.read(MAX_EMBEDDINGS_BYTES)
            doc = json.loads(raw)
            rows = sorted(doc["data"], key=lambda d: int(d["index"]))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
            tokens = int((doc.get("usage") or {}).get("prompt_tokens", 0))
        except (OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            raise PeerFailed(f"{self.name} ({self.url}) gave no usable embeddings: "
                             f"{_describe(exc)}") from None
        finally:
            resp.release()
        if len(vectors) != len(texts):
            raise PeerFailed(f"{self.name} returned {len(vectors)} embeddings for "
                             f"{len(texts)} inputs")
        return vectors, tokens

    async def relay(self, body: bytes, path: str = CHAT_PATH) -> AsyncIterator[bytes]:
        """The peer's SSE answer to a client's own request ``body``, as raw bytes.

        For the API's streaming requests: the events pass through unparsed, which
        keeps the hop short, and always whole (a piece that ends inside an event
        waits for the rest). An error before the first piece went out raises
        :class:`PeerFailed` (the router tries the next candidate). After it, an
        answer that breaks off, or ends without ``data: [DONE]``, raises
        :class:`StreamInterrupted`; ``reported`` is true when the peer's own
        ``data: {"error": ...}`` event was the last thing relayed.
        """
        resp = await self._open(body, path)
        t = self._timeouts
        pending = b""
        sent = False
        try:
            while True:
                try:
                    async with asyncio.timeout(t.idle_s if sent else t.first_token_s):
                        piece = await resp.read_some()
                except (OSError, TimeoutError, ValueError) as exc:
                    raise self._broken(sent, f"failed: {_describe(exc)}") from None
                if not piece:
                    if DONE_EVENT.fullmatch(pending.strip()):  # [DONE] without its blank line
                        yield pending.strip() + b"\n\n"
                        return
                    raise self._broken(sent, "ended the stream before [DONE]")
                pending += piece
                end = sse.events_end(pending)
                if end == 0:
                    if len(pending) > MAX_LINE_BYTES:
                        raise self._broken(sent, f"sent an event of over {MAX_LINE_BYTES} bytes")
                    continue
                events, pending = pending[:end], pending[end:]
                kind, message = _scan(events)
                if kind == "error" and not sent:
                    raise PeerFailed(f"{self.name} reported: {message}")
                yield events
                sent = True
                if kind == "error":
                    interrupted = StreamInterrupted(f"{self.name} reported: {message}; "
                                                    "the answer is incomplete")
                    interrupted.reported = message is not None and ERROR_EVENT in events
                    raise interrupted
                if kind == "done":
                    await _drain(resp)
                    return
        finally:
            resp.release()

    def _broken(self, sent: bool, what: str) -> LLMError:
        """The error for a stream that failed: before anything was passed on, or after."""
        text = f"{self.name} ({self.url}) {what}"
        if sent:
            return StreamInterrupted(text + "; the answer is incomplete")
        return PeerFailed(text)

    async def _open(self, body: bytes, path: str) -> Response:
        """POST ``body`` to ``path``; the response once its status is 200, else the
        matching error."""
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream",
                   HOP_HEADER: "1"}
        full_path = self._prefix + path
        signer = self._signer

        def sign(reached: str | None) -> Mapping[str, str]:
            if signer is None:
                return {}
            try:
                return signer("POST", full_path, body, receiver=reached or self.peer_id or "",
                              headers=headers)
            except SecurityError as exc:  # no cluster key: loopback peers still answer unsigned
                log.debug("sending an unsigned request to %s: %s", self.name, exc)
                return {}

        t = self._timeouts
        try:
            async with asyncio.timeout(t.connect_s + t.first_token_s):
                resp = await self._pool.post(self._origin, full_path, body, headers,
                                             connect_timeout_s=t.connect_s, peer=self.peer_id,
                                             sign=sign)
        except (OSError, TimeoutError, ValueError) as exc:
            raise PeerFailed(f"{self.name} ({self.url}) cannot be reached: "
                             f"{_describe(exc)}") from None
        if resp.status == 200:
            return resp
        try:
            await self._raise_for(resp)
        finally:
            resp.release()
        raise AssertionError("unreachable")  # _raise_for always raises

    async def _events(self, resp: Response) -> AsyncIterator[ChatChunk]:
        t = self._timeouts
        calls: dict[int, dict[str, Any]] = {}
        final: ChatChunk | None = None
        started = False
        events = sse.Reader(resp.read_some, MAX_LINE_BYTES)
        while True:
            async with asyncio.timeout(t.idle_s if started else t.first_token_s):
                field = await events.field()
            if field is None:
                raise PeerFailed(f"{self.name} closed the stream before [DONE]")
            name, value = field
            if name != "data":
                continue
            data = value.strip()
            if data == "[DONE]":
                if final is None:
                    raise PeerFailed(f"{self.name} ended the stream without a finish_reason")
                await _drain(resp)  # the body's end, so the connection can serve again
                yield final
                return
            obj = json.loads(data)
            if not isinstance(obj, dict):
                raise ValueError("an event that is not a JSON object")
            if "error" in obj:
                err = obj["error"] if isinstance(obj["error"], dict) else {}
                raise PeerFailed(f"{self.name} reported: "
                                 f"{peer_text.message(err.get('message', obj['error']))}")
            started = True
            usage = obj.get("usage")
            if final is not None and usage:
                final = ChatChunk(content=final.content, tool_calls=final.tool_calls,
                                  finish_reason=final.finish_reason, usage=usage,
                                  served_by=self.name, logprobs=final.logprobs)
            for choice in obj.get("choices") or []:
                # A chat chunk has a delta; a legacy completion chunk has text.
                delta = choice.get("delta") or {"content": choice.get("text")}
                logprobs = _logprobs(choice.get("logprobs"))
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
                                      usage=usage or None, served_by=self.name,
                                      logprobs=logprobs)
                elif content or logprobs:
                    yield ChatChunk(content=content, served_by=self.name, logprobs=logprobs)

    async def _raise_for(self, resp: Response) -> None:
        try:
            async with asyncio.timeout(self._timeouts.idle_s):
                raw = await resp.read(MAX_ERROR_BYTES)
        except (OSError, TimeoutError, ValueError) as exc:
            raw = f"(the error body could not be read: {_describe(exc)})".encode()
        try:
            err = json.loads(raw)["error"]
            message = peer_text.message(err.get("message"))
        except (ValueError, KeyError, TypeError, AttributeError):
            message = peer_text.message(raw[:200].decode(errors="replace"))
        where = f"{self.name}: {message}"
        # The caller's own mistakes come back as they are; anything else is the peer's failure.
        if resp.status == 404:
            raise UnknownModel(where)
        if resp.status == 400:
            prompt = "context" in message or "prompt" in message
            raise (PromptTooLong(where) if prompt else InvalidRequest(where))
        raise PeerFailed(f"{self.name} answered {resp.status}: {message}")


def _scan(events: bytes) -> tuple[str | None, str | None]:
    """("error", message) / ("done", None) / (None, None) for whole events, cheaply.

    An error is a ``data:`` event with an ``error`` object (OpenAI's, and ours) or an
    ``error:`` line (llama.cpp's server); "done" is ``data: [DONE]``.
    """
    if b"error" not in events and b"[DONE]" not in events:
        return None, None
    for raw in events.splitlines():
        name, value = sse.parse_field(raw.strip())
        if name == "error":
            return "error", _error_message(value)
        if name != "data":
            continue
        data = value.strip()
        if data == "[DONE]":
            return "done", None
        if '"error"' in data:
            message = _error_message(data)
            if message is not None:
                return "error", message
    return None, None


def _error_message(data: str) -> str | None:
    """The message of an ``{"error": ...}`` JSON object, cleaned (appliance.net.text); None
    when ``data`` is JSON but not such an object."""
    try:
        obj = json.loads(data)
    except ValueError:
        return peer_text.message(data)
    if not isinstance(obj, dict) or "error" not in obj:
        return None
    err = obj["error"]
    return peer_text.message(err.get("message", err) if isinstance(err, dict) else err)


async def _drain(resp: Response) -> None:
    """Read what is left of a body (the chunked end) briefly; a peer that dawdles loses the
    connection's reuse, nothing else."""
    with contextlib.suppress(OSError, TimeoutError, ValueError):
        async with asyncio.timeout(DRAIN_S):
            left = DRAIN_BYTES
            while left > 0 and (piece := await resp.read_some()):
                left -= len(piece)


def _payload(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "stream": True,
                            "stream_options": {"include_usage": True},
                            "temperature": request.temperature, "top_p": request.top_p}
    if request.prompt is not None:
        body["prompt"] = request.prompt
        if request.logprobs:  # the legacy form: an int of alternatives
            body["logprobs"] = request.top_logprobs
    else:
        body["messages"] = request.messages
        if request.logprobs:
            body.update(logprobs=True, top_logprobs=request.top_logprobs)
        if request.tools and not request.parallel_tool_calls:
            body["parallel_tool_calls"] = False
    optional = {"max_tokens": request.max_tokens, "seed": request.seed,
                "tools": request.tools, "tool_choice": request.tool_choice,
                "response_format": request.response_format,
                "conversation_id": request.conversation_id}
    body.update({k: v for k, v in optional.items() if v is not None})
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def _logprobs(lp: Any) -> list[dict[str, Any]] | None:
    """A chunk's logprobs as chat entries, from the chat form or the legacy completion form."""
    if not isinstance(lp, dict):
        return None
    if isinstance(lp.get("content"), list):
        return list(lp["content"])
    tokens, values = lp.get("tokens"), lp.get("token_logprobs")
    if not isinstance(tokens, list) or not isinstance(values, list):
        return None
    tops = lp.get("top_logprobs") or [None] * len(tokens)

    def entry(token: Any, value: Any) -> dict[str, Any]:
        text = str(token)
        return {"token": text, "logprob": float(value), "bytes": list(text.encode())}

    return [{**entry(t, v), "top_logprobs": [entry(k, x) for k, x in (top or {}).items()]}
            for t, v, top in zip(tokens, values, tops, strict=False)]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
