"""The peer client moved to appliance.net.peer; this keeps old imports working, plus the
server side's bounded body reader."""

from __future__ import annotations

import aiohttp

from appliance.net.peer import (  # noqa: F401  (re-exported)
    CONNECT_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    MAX_RESPONSE_BYTES,
    PeerClient,
    PeerError,
    Resolver,
    Signer,
    Target,
    error_message,
    node_tls_for,
    resolver_for,
    signer_for,
)


async def read_bounded(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The whole stream, or its first ``limit + 1`` bytes when it is longer."""
    buf = bytearray()
    while len(buf) <= limit:
        chunk = await stream.read(limit + 1 - len(buf))
        if not chunk:
            break
        buf.extend(chunk)
    return bytes(buf)
