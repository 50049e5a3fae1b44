"""The test process as a node of the cluster: an endorsed certificate and the cluster key, so
it can make (and replay) the requests peers make, over the node link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from appliance.net.http1 import Origin, Pool
from appliance.security.nodetls import NodeTLS
from appliance.security.signing import Signer
from tests.support.nodelink import node_tls

TIMEOUT_S = 10.0


class TestPeer:
    """Signed requests over mutual TLS to nodes at their LAN URLs."""

    __test__ = False  # not a test class

    def __init__(self, directory: Path, key: bytes) -> None:
        self.tls: NodeTLS = node_tls(directory, key)
        self.signer = Signer(key)
        self.pool = Pool(node_tls=lambda: self.tls)

    def sign(self, method: str, path: str, body: bytes, receiver: str,
             headers: dict[str, str] | None = None) -> dict[str, str]:
        return self.signer.sign_headers(method, path, body, receiver=receiver, headers=headers)

    async def call(self, url: str, method: str, path: str, body: bytes | None = None, *,
                   headers: dict[str, str] | None = None, signed: dict[str, str] | None = None,
                   sign: bool = True) -> tuple[int, Any]:
        """One request; ``signed`` replays given signature headers, else it is signed for the
        node the connection reached (unless ``sign`` is false). (status, decoded body)."""
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")

        def signature(reached: str | None) -> dict[str, str]:
            if signed is not None:
                return signed
            if not sign:
                return {}
            return self.sign(method, path, body or b"", reached or "", hdrs)

        resp = await self.pool.request(method, Origin.parse(url), path, body, hdrs,
                                       connect_timeout_s=TIMEOUT_S, sign=signature)
        try:
            raw = await resp.read(16 * 1024 * 1024)
        finally:
            resp.release()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw

    async def close(self) -> None:
        await self.pool.close()
