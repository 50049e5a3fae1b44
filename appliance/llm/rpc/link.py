"""Who may use the RPC link between boxes, and how it is encrypted: a trust provider's TLS.

ggml RPC crosses the LAN only inside mutually authenticated TLS 1.3. The tunnel
(appliance.llm.rpc.tunnel) takes its two SSL contexts and the check of the peer
after the handshake from a :class:`LinkTrust`, and knows nothing else about keys;
:func:`trust_for` is the one place that picks the provider.

:class:`ClusterKeyTrust` is the INTERIM provider, until the per-node certificates
of the LAN trust issue (16) land. Every node derives the same Ed25519 key from the
cluster key (HKDF-SHA256 under its own label) and the same self-signed certificate
of it, byte for byte. Each side presents it and accepts only it (it is the only
trust anchor, and the peer's certificate must equal it), so whoever completes the
handshake holds the cluster key, and a stranger or a node of another cluster gets
a handshake failure and not one byte of RPC. TLS 1.3's ephemeral key exchange
keeps recorded traffic secret even if the cluster key leaks later. What it does
not do (see docs/security.md): tell one member of the cluster from another (any
key holder can play any node, as with the HMAC challenge) or revoke a single node
short of changing the cluster key. Node certificates will: swap the provider
(its ``expected_peer`` arguments are there for them: the core names the worker it
means, and a node certificate can prove it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import os
import ssl
import tempfile
from typing import Any, Protocol

from appliance.errors import ApplianceError

IDENTITY_LABEL = b"hybrid-agent/rpc-link/identity/v1"
SUBJECT = "hybrid-agent cluster (rpc link)"
# Fixed, so every node builds the identical certificate from the same key.
NOT_BEFORE = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)


class LinkRefused(ApplianceError):
    """The peer completed TLS but may not use the link (the message says why)."""


class LinkTrust(Protocol):
    """Where the link's TLS comes from (the interim cluster key, later node certificates)."""

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
    """The provider this node uses: the interim cluster-key identity.

    Raises LinkRefused when the node has no cluster key (then it has no link at all).
    """
    security = node.get("security")
    key = getattr(security, "key", None)
    if key is None:
        raise LinkRefused("this node has no cluster key (hybrid-agent pair --init, or "
                          "hybrid-agent join CODE), so it has no RPC link")
    return ClusterKeyTrust(key)


class ClusterKeyTrust:
    """Mutual TLS 1.3 pinned to one identity derived from the cluster key (interim)."""

    def __init__(self, cluster_key: bytes) -> None:
        self._cert_pem, self._key_pem = identity(cluster_key)
        self._cert_der = ssl.PEM_cert_to_DER_cert(self._cert_pem.decode())
        self.fingerprint = hashlib.sha256(self._cert_der).hexdigest()[:16]
        self.description = (f"interim: mutual TLS 1.3 pinned to the cluster key's derived "
                            f"identity {self.fingerprint}")

    def server_context(self) -> ssl.SSLContext:
        return self._context(ssl.PROTOCOL_TLS_SERVER)

    def client_context(self, expected_peer: str | None = None) -> ssl.SSLContext:
        # One identity for every member: which node answers cannot be told (module doc).
        return self._context(ssl.PROTOCOL_TLS_CLIENT)

    def server_hostname(self, expected_peer: str | None = None) -> str | None:
        return None

    def peer(self, tls: Any, expected_peer: str | None = None) -> str:
        der = tls.getpeercert(binary_form=True) if tls is not None else None
        if der != self._cert_der:
            raise LinkRefused("the peer's certificate is not this cluster's link identity")
        return f"a holder of the cluster key ({self.fingerprint})"

    def _context(self, protocol: int) -> ssl.SSLContext:
        ctx = ssl.SSLContext(protocol)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False  # the peer is pinned by its certificate, not a name
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=self._cert_pem.decode())
        _load_identity(ctx, self._key_pem + self._cert_pem)
        return ctx


def _load_identity(ctx: ssl.SSLContext, pem: bytes) -> None:
    """load_cert_chain reads files only: an anonymous memory file where the system call
    filter allows one, else a private temporary file, removed at once."""
    try:
        fd = os.memfd_create("rpc-link-identity", os.MFD_CLOEXEC)
    except OSError:
        with tempfile.TemporaryDirectory(prefix="rpc-link-") as tmp:
            path = os.path.join(tmp, "identity.pem")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                fh.write(pem)
            ctx.load_cert_chain(path)
        return
    try:
        os.write(fd, pem)
        ctx.load_cert_chain(f"/proc/self/fd/{fd}")
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def identity(cluster_key: bytes) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) of the link identity of ``cluster_key``.

    Deterministic: the same key gives the same bytes on every node.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.x509.oid import NameOID

    seed = HKDF(algorithm=hashes.SHA256(), length=40, salt=None,
                info=IDENTITY_LABEL).derive(cluster_key)
    key = Ed25519PrivateKey.from_private_bytes(seed[:32])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SUBJECT)])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(int.from_bytes(seed[32:], "big") >> 1 | 1)
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, None))  # Ed25519 signatures are deterministic
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))
