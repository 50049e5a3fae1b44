"""A signed JSON-over-HTTP client to trusted peers, chosen per call, over the node link.

RemoteToolProxy and RemoteWorld talk to a core through this. The candidates
come from a resolver (a :class:`~appliance.net.peers.Selection`: the discovery
registry's, then the configured endpoints) on every call, so a new core is
picked up without a restart. A candidate that fails is reported down and the
next one is asked, as the LLM router does: always when no connection could be
made (the request never left), and for a GET also when the answer failed; a
POST or PUT that may have arrived is not sent twice. Requests go over the
pooled HTTP/1.1 client (appliance.net.http1) with the cluster's
mutual TLS for ``https`` (the expected node is checked, and answers are
authenticated by it), kept alive between calls; each is signed for the node
the connection reached.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from appliance import jsonbounds
from appliance.errors import ApplianceError
from appliance.net import text
from appliance.net.http1 import (
    NodeTLSSource,
    Origin,
    Pool,
    ProtocolError,
    Response,
    never_sent,
)
from appliance.net.peers import MarkDown, Selection

CONNECT_TIMEOUT_S = 2.0
DEFAULT_TIMEOUT_S = 30.0
#: Largest response body read from a peer.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
MAX_REQUESTS = 32
MAX_HEALTH_BYTES = 16 * 1024
#: What a node says of a request signed before it started (appliance.security.signing).
STARTED_LATER = b"before this node (re)started"
_NODE_ID = re.compile(r"[0-9a-f]{32}")

Signer = Callable[..., Mapping[str, str]]
"""``signer(method, path_qs, body, receiver=node_id, headers=request_headers)`` -> headers."""


@dataclass(frozen=True)
class Target:
    """Where to send: a base URL and the node expected there (None: whichever answers)."""

    url: str
    peer_id: str | None = None


Resolver = Callable[[], Any]
"""Returns the candidates best first: a list of peers (``.url``, ``.id``) or Targets, or one
URL, Target or None."""
#: Candidates asked per request at most, and methods asked again after an answer failed.
MAX_TRIES = 3
IDEMPOTENT = frozenset({"GET", "HEAD"})


class PeerError(ApplianceError):
    """No peer, a peer that cannot be reached, or an answer that is not JSON."""

    def __init__(self, message: str, *, never_sent: bool = False) -> None:
        super().__init__(message)
        #: No connection could be made: the request never left.
        self.never_sent = never_sent


class PeerClient:
    """JSON requests to the peer ``resolve()`` names, signed by ``signer``."""

    def __init__(self, resolve: Resolver, signer: Signer | None = None,
                 node_tls: NodeTLSSource | None = None, mark_down: MarkDown | None = None
                 ) -> None:
        self._resolve = resolve
        self._signer = signer
        self._node_tls = node_tls
        self._mark_down = mark_down
        self._pool: Pool | None = None
        self._ids: dict[str, str] = {}

    @classmethod
    def over(cls, selection: Selection, signer: Signer | None = None,
             node_tls: NodeTLSSource | None = None) -> PeerClient:
        """A client of ``selection``'s peers that reports failed ones to it."""
        return cls(selection.peers, signer, node_tls, selection.mark_down)

    def targets(self) -> list[Target]:
        """The candidates, best first; PeerError when there is none."""
        found = self._resolve()
        items = list(found) if isinstance(found, list | tuple) else [found] if found else []
        out = [_target(item) for item in items]
        if not out:
            raise PeerError("no trusted peer is known for this role")
        return out

    def target(self) -> Target:
        return self.targets()[0]

    def base_url(self) -> str:
        return self.target().url

    async def request(self, method: str, path: str, body: Any = None, *,
                      headers: Mapping[str, str] | None = None,
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, Any, Mapping[str, str]]:
        """(status, decoded JSON body, response headers) from the first candidate that
        answers; PeerError when none does (see the module doc for which are tried)."""
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        problems: list[str] = []
        for target in self.targets()[:MAX_TRIES]:
            try:
                return await self._request(target, method, path, data, hdrs, timeout_s)
            except PeerError as exc:
                problems.append(str(exc))
                self._report_down(target, str(exc))
                if not (exc.never_sent or method in IDEMPOTENT):
                    break
        raise PeerError("; ".join(problems))

    async def open(self, method: str, path: str, data: bytes | None,
                   headers: Mapping[str, str]) -> Response:
        """Send a request and return the response with its body unread (the caller reads it
        and must ``release()`` it), from the first candidate that answers (as
        :meth:`request` picks); OSError, ProtocolError or ValueError when none does."""
        targets = self.targets()[:MAX_TRIES]
        for i, target in enumerate(targets):
            try:
                return await self._open(method, path, data, headers, target)
            except (OSError, TimeoutError, ProtocolError, ValueError) as exc:
                self._report_down(target, f"{exc.__class__.__name__}: {exc}")
                if i == len(targets) - 1 or not (never_sent(exc) or method in IDEMPOTENT):
                    raise
        raise AssertionError("unreachable")  # the last candidate's failure is raised

    async def _request(self, target: Target, method: str, path: str, data: bytes | None,
                       hdrs: dict[str, str], timeout_s: float
                       ) -> tuple[int, Any, Mapping[str, str]]:
        try:
            async with asyncio.timeout(timeout_s):
                for attempt in range(2):
                    resp = await self._open(method, path, data, hdrs, target)
                    try:
                        raw = await resp.read(MAX_RESPONSE_BYTES + 1)
                    finally:
                        resp.release()
                    # A peer started by this very request (the tools-server's socket
                    # activation) refuses what was signed before it started: sign it anew.
                    if attempt or resp.status != 401 or STARTED_LATER not in raw:
                        break
        except (OSError, TimeoutError, ProtocolError, ValueError) as exc:
            raise PeerError(f"{target.url}{path}: {exc.__class__.__name__}: {exc}",
                            never_sent=never_sent(exc)) from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise PeerError(f"{target.url}{path}: response larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            decoded = jsonbounds.loads(raw) if raw else None
        except ValueError:
            raise PeerError(f"{target.url}{path}: answered {resp.status} with non-JSON") from None
        return resp.status, decoded, resp.headers

    async def _open(self, method: str, path: str, data: bytes | None,
                    headers: Mapping[str, str], target: Target) -> Response:
        origin = Origin.parse(target.url)
        prefix = target.url[len(f"{origin.scheme}://{origin.netloc}"):]
        full = prefix + path
        signer = self._signer
        if signer is not None and target.peer_id is None and origin.scheme == "http":
            # Plain HTTP (the box's own tools-server on loopback): no certificate names the
            # node, so ask it once; a wrong answer only makes the signature fail.
            target = Target(target.url, await self._node_id_at(origin, prefix))

        def sign(reached: str | None) -> Mapping[str, str]:
            if signer is None:
                return {}
            return signer(method, full, data or b"", receiver=reached or target.peer_id or "",
                          headers=headers)

        return await self._pool_().request(method, origin, full, data, headers,
                                           connect_timeout_s=CONNECT_TIMEOUT_S,
                                           peer=target.peer_id, sign=sign)

    async def _node_id_at(self, origin: Origin, prefix: str) -> str | None:
        url = f"{origin.scheme}://{origin.netloc}{prefix}"
        if url not in self._ids:
            resp = await self._pool_().request("GET", origin, prefix + "/health", None, {},
                                               connect_timeout_s=CONNECT_TIMEOUT_S)
            try:
                raw = await resp.read(MAX_HEALTH_BYTES)
            finally:
                resp.release()
            try:
                found = jsonbounds.loads(raw).get("id")
            except (ValueError, AttributeError):
                found = None
            if not isinstance(found, str) or not _NODE_ID.fullmatch(found):
                return None
            self._ids[url] = found
        return self._ids[url]

    def _report_down(self, target: Target, problem: str) -> None:
        if self._mark_down is not None and target.peer_id is not None:
            self._mark_down(target.peer_id, problem)

    def _pool_(self) -> Pool:
        if self._pool is None:
            self._pool = Pool(limit=MAX_REQUESTS, node_tls=self._node_tls)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def error_message(body: Any, status: int) -> str:
    """The message of an OpenAI-style error body (cleaned: appliance.net.text), or a generic
    one."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return text.message(body["error"].get("message", f"HTTP {status}"))
    return f"HTTP {status}"


def signer_for(node: Any) -> Signer | None:
    """The security component's ``sign_headers``, looked up per call (it may start later)."""
    if node is None:
        return None

    def sign(method: str, path_qs: str, body: bytes, *, receiver: str,
             headers: Mapping[str, str] | None = None) -> Mapping[str, str]:
        security = node.get("security")
        if security is None or getattr(security, "key", None) is None:
            return {}
        return dict(security.sign_headers(method, path_qs, body, receiver=receiver,
                                          headers=headers))

    return sign


def node_tls_for(node: Any) -> NodeTLSSource:
    """The security component's NodeTLS, looked up per connection (None without a key)."""
    return lambda: getattr(node.get("security"), "node_tls", None) if node is not None else None


def _target(item: Any) -> Target:
    """A candidate as a Target: a URL, a Target, or a peer (``.url``, ``.id``); the id is
    the node expected there when it is a node id (a configured endpoint's is its URL)."""
    if isinstance(item, Target):
        return Target(item.url.rstrip("/"), item.peer_id)
    if isinstance(item, str):
        return Target(item.rstrip("/"))
    peer_id = str(item.id)
    return Target(str(item.url).rstrip("/"), peer_id if _NODE_ID.fullmatch(peer_id) else None)
