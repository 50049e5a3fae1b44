"""Who may use the RPC link between boxes, and how it is encrypted: a trust provider's TLS.

ggml RPC crosses the LAN only inside mutually authenticated TLS 1.3. The tunnel
(appliance.llm.rpc.tunnel) takes its two SSL contexts and the check of the peer
after the handshake from a :class:`LinkTrust`, and knows nothing else about keys;
:func:`trust_for` is the one place that picks the provider.

The provider is :class:`NodeCertTrust`: the node certificates of the node link
(appliance.security.nodetls), each node's own key pair endorsed by the cluster
key. Each side presents its node certificate and accepts only one the cluster CA
signed and the revocation list does not name, so a stranger or a node of another
cluster gets a handshake failure and not one byte of RPC, and a revoked node is
refused without re-keying the rest. The core connects to the worker it means by
its node id (the certificate's name is checked, so a relaying node cannot stand
in for another), and the worker checks that the core id a session names is the
certificate's: who owns the worker is authenticated. TLS 1.3's ephemeral key
exchange keeps recorded traffic secret even if a key leaks later.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Protocol

from appliance.errors import ApplianceError
from appliance.security.nodetls import NodeTLS, PeerRejected


class LinkRefused(ApplianceError):
    """The peer completed TLS but may not use the link (the message says why)."""


class LinkTrust(Protocol):
    """Where the link's TLS comes from (the node certificates; tests may bring another)."""

    description: str
    """One line for /api/status: which provider, pinned to what."""

    def server_context(self) -> ssl.SSLContext:
        """For the worker's listener: presents our identity, requires the client's."""
        ...

    def client_context(self, expected_peer: str | None = None) -> ssl.SSLContext:
        """For the core's connections to node ``expected_peer`` (None: any member):
        presents our identity, requires the server's."""
        ...

    def server_hostname(self, expected_peer: str | None = None) -> str | None:
        """What to pass as ``server_hostname`` when connecting to ``expected_peer``."""
        ...

    def peer(self, tls: Any, expected_peer: str | None = None) -> str:
        """The authenticated peer of a finished handshake (an ``ssl.SSLObject``) in words;
        LinkRefused when it may not use the link (or is not ``expected_peer``)."""
        ...


async def prepare(node: Any, key: str) -> tuple[LinkTrust | None, str]:
    """What either end needs first: ggml's RPC backend (LLMError naming the config ``key``
    without it) and the trust provider (None and the reason without a cluster key)."""
    from appliance.llm.chat import LLMError
    from appliance.llm.rpc import ggml

    try:
        await asyncio.to_thread(ggml.rpc_registry)
    except ggml.RpcUnavailable as exc:
        raise LLMError(f"{key}: {exc}") from None
    try:
        return trust_for(node), ""
    except LinkRefused as exc:
        return None, str(exc)


def trust_for(node: Any) -> LinkTrust:
    """The provider this node uses: its node certificate.

    Raises LinkRefused when the node has no cluster key or no node certificate (then it
    has no link at all).
    """
    security = node.get("security")
    if getattr(security, "key", None) is None:
        raise LinkRefused("this node has no cluster key (hybrid-agent pair --init, or "
                          "hybrid-agent join CODE), so it has no RPC link")
    tls = getattr(security, "node_tls", None)
    if tls is None:
        why = getattr(security, "tls_problem", "") or "no node certificate"
        raise LinkRefused(f"this node has no TLS between nodes ({why}), so it has no RPC link")
    return NodeCertTrust(tls)


class NodeCertTrust:
    """Mutual TLS 1.3 with node certificates endorsed by the cluster key (an adapter of
    :class:`~appliance.security.nodetls.NodeTLS` to :class:`LinkTrust`)."""

    def __init__(self, tls: NodeTLS) -> None:
        self._tls = tls
        self.description = (f"node certificates: mutual TLS 1.3, this node {tls.node_id[:8]}, "
                            f"endorsed by {tls.ca.name.rfc4514_string()}")

    def server_context(self) -> ssl.SSLContext:
        return self._tls.server_context()

    def client_context(self, expected_peer: str | None = None) -> ssl.SSLContext:
        return self._tls.client_context(expected_peer)

    def server_hostname(self, expected_peer: str | None = None) -> str | None:
        return self._tls.server_hostname(expected_peer)

    def peer(self, tls: Any, expected_peer: str | None = None) -> str:
        try:
            return f"node {self._tls.verify(tls, expected_peer).node_id}"
        except PeerRejected as exc:
            raise LinkRefused(str(exc)) from None
