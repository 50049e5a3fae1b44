"""A signed JSON-over-HTTP client to one trusted peer, chosen per call.

RemoteToolProxy and RemoteWorld talk to a core through this: the base URL
comes from a resolver (the discovery registry, or a static endpoint from the
config) each time, so a failed-over core is picked up without a restart, and
every request carries the headers of the injected signer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from appliance import jsonbounds
from appliance.errors import ApplianceError

CONNECT_TIMEOUT_S = 2.0
DEFAULT_TIMEOUT_S = 30.0
#: Largest response body read from a peer.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024

Resolver = Callable[[], str | None]
Signer = Callable[[str, str, bytes], Mapping[str, str]]


class PeerError(ApplianceError):
    """No peer, a peer that cannot be reached, or an answer that is not JSON."""


class PeerClient:
    """JSON requests to the peer ``resolve()`` names, signed by ``signer``."""

    def __init__(self, resolve: Resolver, signer: Signer | None = None) -> None:
        self._resolve = resolve
        self._signer = signer
        self._session: aiohttp.ClientSession | None = None

    def base_url(self) -> str:
        url = self._resolve()
        if not url:
            raise PeerError("no trusted peer is known for this role")
        return url.rstrip("/")

    async def request(self, method: str, path: str, body: Any = None, *,
                      headers: Mapping[str, str] | None = None,
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, Any, Mapping[str, str]]:
        """(status, decoded JSON body, response headers); PeerError when unreachable."""
        base = self.base_url()
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        hdrs = dict(headers or {})
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(self.sign(method, path, data))
        timeout = aiohttp.ClientTimeout(total=timeout_s, connect=CONNECT_TIMEOUT_S)
        try:
            async with self.session().request(method, base + path, data=data or None,
                                              headers=hdrs, timeout=timeout) as resp:
                raw = await read_bounded(resp.content, MAX_RESPONSE_BYTES)
                if len(raw) > MAX_RESPONSE_BYTES:
                    raise PeerError(f"{base}{path}: response larger than "
                                    f"{MAX_RESPONSE_BYTES} bytes")
                try:
                    decoded = jsonbounds.loads(raw) if raw else None
                except ValueError:
                    raise PeerError(f"{base}{path}: answered {resp.status} with non-JSON") from None
                return resp.status, decoded, resp.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise PeerError(f"{base}{path}: {exc.__class__.__name__}: {exc}") from None

    def sign(self, method: str, path_qs: str, body: bytes) -> Mapping[str, str]:
        return self._signer(method, path_qs, body) if self._signer is not None else {}

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def read_bounded(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole stream, or its first ``limit + 1`` bytes when it is longer."""
    buf = bytearray()
    while len(buf) <= limit:
        chunk = await stream.read(limit + 1 - len(buf))
        if not chunk:
            break
        buf.extend(chunk)
    return bytes(buf)


def error_message(body: Any, status: int) -> str:
    """The message of an OpenAI-style error body, or a generic one."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", f"HTTP {status}"))
    return f"HTTP {status}"


def resolver_for(node: Any, role: str, static: list[str]) -> Resolver:
    """A resolver: the discovery registry's pick for ``role``, else the first static URL."""

    def resolve() -> str | None:
        discovery = node.get("discovery") if node is not None else None
        registry = getattr(discovery, "registry", None)
        if registry is not None and hasattr(registry, "select"):
            peer = registry.select(role)
            url = _peer_url(peer)
            if url:
                return url
        return static[0] if static else None

    return resolve


def signer_for(node: Any) -> Signer | None:
    """The security component's ``sign_headers``, looked up per call (it may start later)."""
    if node is None:
        return None

    def sign(method: str, path_qs: str, body: bytes) -> Mapping[str, str]:
        security = node.get("security")
        if security is None or not hasattr(security, "sign_headers"):
            return {}
        return security.sign_headers(method, path_qs, body)

    return sign


def _peer_url(peer: Any) -> str | None:
    if isinstance(peer, list | tuple):
        peer = peer[0] if peer else None
    if peer is None:
        return None
    if isinstance(peer, str):
        return peer
    for attr in ("url", "base_url"):
        value = getattr(peer, attr, None)
        if isinstance(value, str) and value:
            return value
        if callable(value):
            result = value()
            if isinstance(result, str):
                return result
    return None
