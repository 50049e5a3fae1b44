"""A signed JSON-over-HTTP client to one trusted peer, chosen per call, over the node link.

RemoteToolProxy and RemoteWorld talk to a core through this: the target comes
from a resolver (the discovery registry, or a static URL from the config)
each time, so a failed-over core is picked up without a restart. Requests go
over the pooled HTTP/1.1 client (appliance.net.http1) with the cluster's
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
from appliance.net.http1 import NodeTLSSource, Origin, Pool, ProtocolError, Response

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


Resolver = Callable[[], Target | str | None]


class PeerError(ApplianceError):
    """No peer, a peer that cannot be reached, or an answer that is not JSON."""


class PeerClient:
    """JSON requests to the peer ``resolve()`` names, signed by ``signer``."""

    def __init__(self, resolve: Resolver, signer: Signer | None = None,
                 node_tls: NodeTLSSource | None = None) -> None:
        self._resolve = resolve
        self._signer = signer
        self._node_tls = node_tls
        self._pool: Pool | None = None
        self._ids: dict[str, str] = {}

    def target(self) -> Target:
        found = self._resolve()
        if not found:
            raise PeerError("no trusted peer is known for this role")
        target = Target(found) if isinstance(found, str) else found
        return Target(target.url.rstrip("/"), target.peer_id)

    def base_url(self) -> str:
        return self.target().url

    async def request(self, method: str, path: str, body: Any = None, *,
                      headers: Mapping[str, str] | None = None,
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, Any, Mapping[str, str]]:
        """(status, decoded JSON body, response headers); PeerError when unreachable."""
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        target = self.target()
        try:
            async with asyncio.timeout(timeout_s):
                for attempt in range(2):
                    resp = await self.open(method, path, data, hdrs, target=target)
                    try:
                        raw = await resp.read(MAX_RESPONSE_BYTES + 1)
                    finally:
                        resp.release()
                    # A peer started by this very request (the tools-server's socket
                    # activation) refuses what was signed before it started: sign it anew.
                    if attempt or resp.status != 401 or STARTED_LATER not in raw:
                        break
        except (OSError, TimeoutError, ProtocolError, ValueError) as exc:
            raise PeerError(f"{target.url}{path}: {exc.__class__.__name__}: {exc}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise PeerError(f"{target.url}{path}: response larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            decoded = jsonbounds.loads(raw) if raw else None
        except ValueError:
            raise PeerError(f"{target.url}{path}: answered {resp.status} with non-JSON") from None
        return resp.status, decoded, resp.headers

    async def open(self, method: str, path: str, data: bytes | None,
                   headers: Mapping[str, str], *, target: Target | None = None) -> Response:
        """Send a request and return the response with its body unread (the caller reads it
        and must ``release()`` it); OSError, ProtocolError or ValueError when it fails."""
        target = target or self.target()
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

    def _pool_(self) -> Pool:
        if self._pool is None:
            self._pool = Pool(limit=MAX_REQUESTS, node_tls=self._node_tls)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def error_message(body: Any, status: int) -> str:
    """The message of an OpenAI-style error body, or a generic one."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", f"HTTP {status}"))
    return f"HTTP {status}"


def resolver_for(node: Any, role: str, static: list[str]) -> Resolver:
    """A resolver: the discovery registry's pick for ``role``, else the first static URL."""

    def resolve() -> Target | None:
        discovery = node.get("discovery") if node is not None else None
        registry = getattr(discovery, "registry", None)
        if registry is not None and hasattr(registry, "select"):
            found = registry.select(role)
            if found:
                peer = found[0]
                peer_id = str(peer.id)
                return Target(peer.url, peer_id if _NODE_ID.fullmatch(peer_id) else None)
        return Target(static[0]) if static else None

    return resolve


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
