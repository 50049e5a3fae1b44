"""TLS between nodes: contexts that accept only peers endorsed by the cluster key.

The API the rest of the code (and other packages: the llama.cpp RPC link) uses::

    tls = security.node_tls                     # a NodeTLS, or None without a cluster key
    ctx = tls.server_context()                  # for a listener: mutual TLS, client certs required
    ctx = tls.client_context(peer_id)           # for a connection to ``peer_id`` (None: any node)
    name = tls.server_hostname(peer_id)         # pass as server_hostname= when connecting
    peer = tls.verify(ssl_object, peer_id)      # after the handshake, both sides: PeerCert or
                                                # PeerRejected (revoked, or not ``peer_id``)
    reader, writer, peer = await tls.open_connection(host, port, peer_id, timeout_s=5)

Both contexts verify the other side's certificate chain against the cluster CA
(appliance.security.certs) and the current revocation list, so a man in the
middle without the key fails the handshake either way, and answers are as
authenticated as requests. ``verify`` repeats the checks that matter after the
handshake (the id, and a revocation that arrived while a connection was kept
alive). Contexts are rebuilt when the revocation list changes; ``on_change``
callbacks let connection pools drop what they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import ssl
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.security import certs
from appliance.security.certs import CertError, ClusterCA, Revocations
from appliance.security.errors import SecurityError
from appliance.security.files import write_atomic

log = logging.getLogger(__name__)

NODE_KEY_FILE = "node.key"
NODE_CERT_FILE = "node.crt"
REVOCATIONS_FILE = "revoked.crl"
PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


class PeerRejected(SecurityError):
    """The other side of a node link is not the node expected, or has been revoked."""


@dataclass(frozen=True)
class PeerCert:
    """Who is at the other end of a verified node link."""

    node_id: str


class NodeTLS:
    """This node's key and certificate, the cluster CA and the revocation list."""

    def __init__(self, node_id: str, ca: ClusterCA, key_path: Path, cert_path: Path,
                 crl_path: Path, revocations: Revocations) -> None:
        self.node_id = node_id
        self.ca = ca
        self.key_path = key_path
        self.cert_path = cert_path
        self.crl_path = crl_path
        self.revocations = revocations
        self._crl_mtime = _mtime(crl_path)
        self._server: ssl.SSLContext | None = None
        self._clients: dict[bool, ssl.SSLContext] = {}
        #: Called (no arguments) after the revocation list changed.
        self.on_change: list[Callable[[], None]] = []

    @classmethod
    def load(cls, tls_dir: Path, node_id: str, cluster_key: bytes) -> NodeTLS:
        """This node's TLS material under ``tls_dir``; the key pair is made on first use and
        the certificate (re-)issued when it is missing or not the current key's."""
        ca = certs.cluster_ca(cluster_key)
        tls_dir.mkdir(parents=True, exist_ok=True)
        key_path, cert_path = tls_dir / NODE_KEY_FILE, tls_dir / NODE_CERT_FILE
        key = _load_or_create_key(key_path)
        try:
            cert = certs.load_cert(cert_path.read_bytes())
            current = certs.endorsed(ca, cert, node_id, key)
        except (OSError, CertError):
            current = False
        if not current:
            cert = certs.issue_node_cert(ca, node_id, key)
            write_atomic(cert_path, certs.cert_pem(cert), PUBLIC_MODE)
            log.info("node certificate issued for %s under cluster CA %s", node_id,
                     ca.name.rfc4514_string())
        crl_path = tls_dir / REVOCATIONS_FILE
        revocations = read_revocation_file(ca, crl_path)
        if revocations is None:
            revocations = certs.issue_revocations(ca, frozenset(), 0)
            write_atomic(crl_path, revocations.pem, PUBLIC_MODE)
        return cls(node_id, ca, key_path, cert_path, crl_path, revocations)

    @classmethod
    def ephemeral(cls, directory: Path, cluster_key: bytes,
                  revocations_from: Path | None = None) -> NodeTLS:
        """A throwaway identity under ``directory`` (for a command such as `discover`, which
        talks to nodes without being the node), with the node's revocation list if readable."""
        crl = None
        if revocations_from is not None:
            with contextlib.suppress(OSError):
                crl = revocations_from.read_bytes()
        tls = cls.load(directory, secrets.token_hex(16), cluster_key)
        if crl is not None:
            with contextlib.suppress(CertError):
                tls.merge(crl)
        return tls

    # ------------------------------------------------------------ contexts

    def server_context(self) -> ssl.SSLContext:
        """For a listener: presents this node's certificate, requires an endorsed client's."""
        if self._server is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._trust(ctx)
            ctx.verify_mode = ssl.CERT_REQUIRED
            self._server = ctx
        return self._server

    def client_context(self, expected_peer: str | None = None) -> ssl.SSLContext:
        """For connecting to ``expected_peer`` (checked by name: pass :meth:`server_hostname`),
        or to any node of the cluster when None."""
        strict = expected_peer is not None
        ctx = self._clients.get(strict)
        if ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._trust(ctx)
            ctx.check_hostname = strict
            self._clients[strict] = ctx
        return ctx

    @staticmethod
    def server_hostname(expected_peer: str | None = None) -> str:
        """The name to ask for (SNI) and check: the peer's node name, or the nodes' domain."""
        return certs.node_hostname(expected_peer) if expected_peer else certs.NODE_DOMAIN

    def verify(self, ssl_object: Any, expected_peer: str | None = None) -> PeerCert:
        """The peer of a handshaken connection; PeerRejected when it is not ``expected_peer``
        or is revoked (the handshake already checked the chain). Cheap to repeat per request:
        the certificate is read once per connection."""
        node_id = _PEERS.get(ssl_object) if ssl_object is not None else None
        if node_id is None:
            node_id = peer_node_id(ssl_object)
            _PEERS[ssl_object] = node_id
        if expected_peer is not None and node_id != expected_peer:
            raise PeerRejected(f"the other side is node {node_id}, not {expected_peer}")
        if node_id in self.revocations.node_ids:
            raise PeerRejected(f"node {node_id} has been revoked")
        return PeerCert(node_id)

    async def open_connection(self, host: str, port: int, expected_peer: str | None, *,
                              timeout_s: float, limit: int = 64 * 1024
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, PeerCert]:
        """A verified TLS stream to the node at ``host:port``."""
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=self.client_context(expected_peer), limit=limit,
                server_hostname=self.server_hostname(expected_peer))
        try:
            peer = self.verify(writer.get_extra_info("ssl_object"), expected_peer)
        except PeerRejected:
            writer.transport.abort()
            raise
        return reader, writer, peer

    # ------------------------------------------------------------ revocation

    def revoked(self, node_id: str) -> bool:
        return node_id in self.revocations.node_ids

    def merge(self, pem: bytes) -> bool:
        """Take in a revocation list (from a peer or the CLI); True when ours grew.

        CertError when it is not this cluster's. The union of both lists is kept
        (re-signed when neither alone holds it), so lists converge however they travel.
        """
        incoming = certs.read_revocations(self.ca, pem)
        have = self.revocations
        if incoming.node_ids <= have.node_ids:
            return False
        if incoming.node_ids >= have.node_ids:
            merged = incoming
        else:
            merged = certs.issue_revocations(self.ca, have.node_ids | incoming.node_ids,
                                             max(have.number, incoming.number) + 1)
        self._adopt(merged)
        return True

    def revoke(self, node_id: str) -> bool:
        """Add ``node_id`` to the revocation list; False when it was already there."""
        certs.check_node_id(node_id)
        if node_id in self.revocations.node_ids:
            return False
        self._adopt(certs.issue_revocations(self.ca, self.revocations.node_ids | {node_id},
                                            self.revocations.number + 1))
        return True

    def reload_if_changed(self) -> bool:
        """Merge the revocation file when someone else (the CLI) rewrote it; True if ours grew."""
        mtime = _mtime(self.crl_path)
        if mtime == self._crl_mtime:
            return False
        self._crl_mtime = mtime
        try:
            return self.merge(self.crl_path.read_bytes())
        except (OSError, CertError) as exc:
            log.error("cannot read the revocation list %s: %s", self.crl_path, exc)
            return False

    def _adopt(self, revocations: Revocations) -> None:
        self.revocations = revocations
        write_atomic(self.crl_path, revocations.pem, PUBLIC_MODE)
        self._crl_mtime = _mtime(self.crl_path)
        self._server = None
        self._clients.clear()
        log.warning("revocation list %d: %d node(s) revoked (%s)", revocations.number,
                    len(revocations.node_ids), ", ".join(sorted(revocations.node_ids)))
        for callback in list(self.on_change):
            try:
                callback()
            except Exception:
                log.exception("a revocation listener failed")

    def _trust(self, ctx: ssl.SSLContext) -> None:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(self.cert_path, self.key_path)
        ctx.load_verify_locations(cadata=self.ca.pem.decode())
        ctx.load_verify_locations(cafile=str(self.crl_path))  # a CRL loads from a file only
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


#: ssl object -> the node id its certificate names (read once per connection).
_PEERS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def peer_node_id(ssl_object: Any) -> str:
    """The node id in the verified certificate of a connection; PeerRejected without one."""
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        raise PeerRejected("the other side presented no node certificate")
    try:
        node_id = certs.node_id_of_serial(int(cert.get("serialNumber", ""), 16))
    except ValueError:
        node_id = None
    if node_id is None:
        raise PeerRejected("the other side's certificate is not a node certificate")
    return node_id


def read_revocation_file(ca: ClusterCA, path: Path) -> Revocations | None:
    """The revocation list stored at ``path``, or None when there is none (or not ours)."""
    try:
        return certs.read_revocations(ca, path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, CertError) as exc:
        log.error("ignoring the revocation list %s: %s", path, exc)
        return None


def _load_or_create_key(path: Path) -> Any:
    try:
        return certs.load_node_key(path.read_bytes())
    except FileNotFoundError:
        pass
    key = certs.new_node_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:  # another process of this node made it meanwhile
        return certs.load_node_key(path.read_bytes())
    with os.fdopen(fd, "wb") as fh:
        fh.write(certs.key_pem(key))
        fh.flush()
        os.fsync(fh.fileno())
    return key


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
