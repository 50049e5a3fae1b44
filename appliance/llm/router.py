"""The router: picks the local engine or a remote core per request, and fails over.

``llm.mode`` decides the candidates: ``local`` -> the engine; ``remote`` -> the
peers (trusted healthy cores from discovery, else ``llm.endpoints``); ``auto``
-> the peers, then the engine; ``off`` -> none. A candidate that fails before
its first token is skipped for the next one while ``llm.failover_budget_s``
lasts (the local engine, being last, is always tried); a failure after the
first token surfaces as :class:`StreamInterrupted`. A peer that failed is
tried last for a while and reported through ``mark_down`` (the discovery
registry's, so nothing else picks it either). A conversation sticks to
the peer that served it while that peer stays a candidate (warm prompt cache).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from appliance.config import LlmConfig
from appliance.llm.chat import (
    ChatChunk,
    ChatRequest,
    LLMClient,
    LLMError,
    NoLLMAvailable,
    UnknownModel,
)
from appliance.llm.client import (
    CHAT_PATH,
    COMPLETIONS_PATH,
    PeerFailed,
    RemoteClient,
    Timeouts,
    base_url,
)
from appliance.net.http1 import NodeTLSSource, Pool
from appliance.net.peer import Signer
from appliance.net.peers import Endpoint, MarkDown, PeerSource
from appliance.node import Component

log = logging.getLogger(__name__)

NODE_ID = re.compile(r"[0-9a-f]{32}")

# A peer that failed is tried after the others for this long.
DOWN_FOR_S = 15.0
MAX_STICKY = 4096
MAX_CLIENTS = 256
MAX_PEER_REQUESTS = 64


def static_peers(urls: list[str]) -> list[Endpoint]:
    """The configured ``llm.endpoints`` as candidates (base URLs, without ``/v1``)."""
    return [Endpoint(id=base_url(u), name=base_url(u).split("://", 1)[1], url=base_url(u))
            for u in urls]


class Router(Component):
    """The component "llm_router": ``stream(ChatRequest)`` answers from the best LLM."""

    name = "llm_router"
    start_timeout_s = 5.0

    def __init__(self, cfg: LlmConfig, local: LLMClient | None, peers: PeerSource,
                 signer: Signer | None = None, mark_down: MarkDown | None = None,
                 node_tls: NodeTLSSource | None = None) -> None:
        self.cfg = cfg
        self._node_tls = node_tls
        self.local = local
        self._peers = peers
        self._signer = signer
        # The discovery registry's mark_down: other callers stop picking the peer at once,
        # not only after its next failed health probe.
        self._mark_down = mark_down
        self._timeouts = Timeouts(cfg.connect_timeout_s, cfg.first_token_timeout_s,
                                  cfg.idle_timeout_s)
        self._pool: Pool | None = None
        self._clients: dict[tuple[Any, ...], RemoteClient] = {}
        self._down: dict[str, float] = {}
        self._sticky: OrderedDict[str, str] = OrderedDict()
        self.stats = {"local": 0, "remote": 0, "failovers": 0, "interrupted": 0}

    # ------------------------------------------------------------ Component

    async def start(self) -> None:
        self._pool = Pool(limit=MAX_PEER_REQUESTS, node_tls=self._node_tls)
        self._clients.clear()  # each client holds the pool it was made with

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def describe(self) -> dict[str, Any]:
        return {"mode": self.cfg.mode, "local": self.local is not None,
                "peers": [p.name for p in self._remote_peers()], **self.stats}

    def available(self) -> bool:
        """Whether a model may answer now: the local one, or a peer's (discovered and
        trusted, or configured in llm.endpoints) that has not failed in the last
        ``DOWN_FOR_S``. Not a promise: a peer may go away before the next request."""
        if self.local is not None and self._use_local():
            return True
        if self._pool is None:  # not started: no request goes to a peer
            return False
        now = time.monotonic()
        return any(self._down.get(p.id, 0.0) <= now for p in self._remote_peers())

    # ------------------------------------------------------------ LLMClient

    def model_ids(self) -> list[str]:
        """Local model ids, then the models peers announce, without duplicates."""
        ids = list(self.local.model_ids()) if self._use_local() and self.local else []
        for peer in self._remote_peers():
            ids += [m for m in getattr(peer, "models", ()) if m not in ids]
        return ids

    async def stream(self, request: ChatRequest, *,
                     local_only: bool = False) -> AsyncIterator[ChatChunk]:
        """Answer from the first candidate that produces a token; see the module doc."""
        async for chunk in self._answer(request, local_only, None):
            assert isinstance(chunk, ChatChunk)
            yield chunk

    async def relay(self, request: ChatRequest, body: bytes, *,
                    local_only: bool = False) -> AsyncIterator[ChatChunk | bytes]:
        """As :meth:`stream`, for the API's streamed requests: a peer's answer comes back
        as its raw SSE bytes, passed through unparsed (``body`` is the client's own
        request, already validated into ``request``; see ``RemoteClient.relay``). The
        local model still yields ChatChunks."""
        async for piece in self._answer(request, local_only, body):
            yield piece

    async def embed(self, texts: list[str], model: str = "default", *,
                    local_only: bool = False) -> tuple[list[list[float]], int]:
        """Embeddings from the first candidate that gives them (same order as chat)."""
        probe = ChatRequest(messages=[], model=model)
        problems: list[str] = []
        for key, client in self._candidates(probe, local_only):
            try:
                return await client.embed(texts, model)  # type: ignore[attr-defined]
            except PeerFailed as exc:
                problems.append(f"{client.name}: {exc}")
                self._report_down(key, f"embeddings failed: {exc}")
        raise NoLLMAvailable("no LLM could give embeddings: " + "; ".join(problems))

    async def _answer(self, request: ChatRequest, local_only: bool,
                      relay: bytes | None) -> AsyncIterator[ChatChunk | bytes]:
        candidates = self._candidates(request, local_only)
        deadline = time.monotonic() + self.cfg.failover_budget_s
        problems: list[str] = []
        path = CHAT_PATH if request.prompt is None else COMPLETIONS_PATH
        for key, client in candidates:
            is_local = client is self.local
            if problems and not is_local and time.monotonic() >= deadline:
                # Skip the remaining peers; the local model (always last) is still tried.
                used_up = f"failover budget of {self.cfg.failover_budget_s:g}s used up"
                if used_up not in problems:
                    problems.append(used_up)
                continue
            if relay is not None and isinstance(client, RemoteClient):
                agen: Any = client.relay(relay, path).__aiter__()
            else:
                agen = client.stream(request).__aiter__()
            try:
                try:
                    if is_local:
                        first = await agen.__anext__()
                    else:
                        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                            first = await agen.__anext__()
                except (PeerFailed, TimeoutError, StopAsyncIteration) as exc:
                    what = str(exc) or "no answer within the failover budget"
                    problems.append(f"{client.name}: {what}")
                    if not is_local:
                        self._down[key] = time.monotonic() + DOWN_FOR_S
                        self._report_down(key, f"llm request failed: {what}")
                    self.stats["failovers"] += 1
                    log.warning("llm: %s failed before its first token: %s", client.name, what)
                    continue
                self._down.pop(key, None)
                self.stats["local" if is_local else "remote"] += 1
                if request.conversation_id:
                    self._stick(request.conversation_id, key)
                yield first
                async for chunk in agen:
                    yield chunk
                return
            except LLMError as exc:
                if exc.code == "stream_interrupted":
                    self.stats["interrupted"] += 1
                raise
            finally:
                await agen.aclose()
        raise NoLLMAvailable("no LLM could answer: " + "; ".join(problems))

    # ------------------------------------------------------------ helpers

    def _report_down(self, key: str, problem: str) -> None:
        if self._mark_down is None:
            return
        try:
            self._mark_down(key, problem)
        except Exception:
            log.exception("llm: marking %s down failed", key)

    def _use_local(self) -> bool:
        return self.cfg.mode in ("local", "auto")

    def _remote_peers(self) -> list[Any]:
        if self.cfg.mode not in ("remote", "auto"):
            return []
        try:
            return list(self._peers())
        except Exception:
            log.exception("llm: the peer source failed")
            return []

    def _candidates(self, request: ChatRequest, local_only: bool
                    ) -> list[tuple[str, LLMClient]]:
        local_ok = self.local is not None and self._use_local() and (
            request.model == "default" or request.model in self.local.model_ids())
        out: list[tuple[str, LLMClient]] = []
        if not local_only and self._pool is not None:
            now = time.monotonic()
            peers = [p for p in self._remote_peers()
                     if request.model == "default" or not getattr(p, "models", ())
                     or request.model in p.models]
            # Healthy first, recently failed last; a sticky conversation's peer leads.
            peers.sort(key=lambda p: self._down.get(p.id, 0.0) > now)
            sticky = self._sticky.get(request.conversation_id or "")
            if sticky is not None:
                peers.sort(key=lambda p: p.id != sticky)
            for p in peers:
                try:
                    out.append((p.id, self._client_for(p)))
                except ValueError as exc:  # a URL no request can go to
                    log.warning("llm: skipping peer %s: %s", p.name, exc)
        if local_ok:
            assert self.local is not None
            out.append(("local", self.local))
        if not out:
            if self.local is not None and self._use_local() and not local_ok:
                raise UnknownModel(f"model {request.model!r} is not served here; "
                                   f"try one of {self.local.model_ids()} or 'default'")
            raise NoLLMAvailable(self._why_none(local_only))
        return out

    def _client_for(self, peer: Any) -> RemoteClient:
        """The RemoteClient of ``peer``, made once per (id, name, url, models)."""
        models = tuple(getattr(peer, "models", ()))
        key = (peer.id, peer.name, peer.url, models)
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= MAX_CLIENTS:
                self._clients.clear()
            assert self._pool is not None
            client = self._clients[key] = RemoteClient(
                peer.name, peer.url, self._pool, timeouts=self._timeouts,
                signer=self._signer, models=list(models),
                peer_id=peer.id if NODE_ID.fullmatch(str(peer.id)) else None)
        return client

    def _why_none(self, local_only: bool) -> str:
        if self.cfg.mode == "off":
            return "this node has no LLM (llm.mode is off)"
        if local_only:
            return "this node has no local model to answer a forwarded request"
        if self.cfg.mode == "remote":
            return "no healthy trusted core is known and llm.mode is remote"
        return "no local model is loaded and no healthy trusted core is known"

    def _stick(self, conversation_id: str, key: str) -> None:
        self._sticky[conversation_id] = key
        self._sticky.move_to_end(conversation_id)
        while len(self._sticky) > MAX_STICKY:
            self._sticky.popitem(last=False)


if TYPE_CHECKING:
    def _router_is_an_llm_client(router: Router) -> LLMClient:
        """mypy holds Router to the LLMClient the agent and voice are handed: stream() yields
        ChatChunks only; the byte relay is relay()."""
        return router
