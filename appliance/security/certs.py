"""X.509 for the links between nodes: the cluster CA, node certificates, revocation lists.

The cluster key is a 32-byte secret every node holds. From it each holder
derives the same Ed25519 **cluster CA** (:func:`cluster_ca`): a deterministic
key and a byte-identical self-signed certificate. A node's own Ed25519 key
pair is made once; its certificate (subject and DNS name from the node id,
serial number from the node id) is signed by that CA: the certificate is
*endorsed with the cluster key*. TLS between nodes then verifies a plain
X.509 chain against the CA, so only a key holder can have made a certificate
a peer accepts.

A **revocation list** is an X.509 CRL signed by the same CA; because a node's
serial number is its id, revoking the serial revokes the node whatever
certificate it holds. Only key holders can sign one, so it may be passed on by
anyone.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.errors import ApplianceError

_CA_LABEL = b"hybrid-agent/cluster-ca/v1"
#: The DNS name in a node certificate: ``<node id>.`` + this.
NODE_DOMAIN = "node.hybrid-agent"
_NODE_ID = re.compile(r"[0-9a-f]{32}")
# The CA is the same bytes on every node: fixed dates and serial, deterministic signature.
_CA_FROM = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
_CA_UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
NODE_CERT_YEARS = 20
# Node serials are 2**128 + the id: positive, unique per id, at most 17 bytes.
_SERIAL_BASE = 1 << 128
MAX_CRL_BYTES = 1024 * 1024
MAX_REVOKED = 10_000


class CertError(ApplianceError, ValueError):
    """A certificate, key or revocation list is malformed or not the cluster's."""


@dataclass(frozen=True)
class ClusterCA:
    """The CA every holder of one cluster key derives."""

    key: ed25519.Ed25519PrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def name(self) -> x509.Name:
        return self.cert.subject


def cluster_ca(cluster_key: bytes) -> ClusterCA:
    """The cluster CA of ``cluster_key`` (the same on every node that holds it)."""
    seed = hmac.new(cluster_key, _CA_LABEL, hashlib.sha256).digest()
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    tag = hashlib.sha256(key.public_key().public_bytes_raw()).hexdigest()[:16]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"hybrid-agent cluster {tag}")])
    public = key.public_key()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(1).not_valid_before(_CA_FROM).not_valid_after(_CA_UNTIL)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, None))
    return ClusterCA(key, cert)


def node_hostname(node_id: str) -> str:
    """The DNS name a node's certificate carries (what TLS clients check for that id)."""
    return f"{node_id}.{NODE_DOMAIN}"


def node_serial(node_id: str) -> int:
    """The serial number of every certificate of ``node_id`` (what a revocation lists)."""
    check_node_id(node_id)
    return _SERIAL_BASE | int(node_id, 16)


def node_id_of_serial(serial: int) -> str | None:
    """The node id a serial number stands for, or None for a serial that is not a node's."""
    if serial >> 128 != 1:
        return None
    return f"{serial & (_SERIAL_BASE - 1):032x}"


def check_node_id(node_id: str) -> str:
    if not isinstance(node_id, str) or not _NODE_ID.fullmatch(node_id):
        raise CertError(f"a node id is 32 lowercase hex characters, not {str(node_id)[:40]!r}")
    return node_id


def new_node_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def issue_node_cert(ca: ClusterCA, node_id: str, key: ed25519.Ed25519PrivateKey,
                    now: dt.datetime | None = None) -> x509.Certificate:
    """The certificate of ``node_id`` for ``key``, signed (endorsed) by the cluster CA."""
    now = now or dt.datetime.now(dt.UTC)
    public = key.public_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, check_node_id(node_id))])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(ca.name).public_key(public)
            .serial_number(node_serial(node_id))
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365 * NODE_CERT_YEARS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(node_hostname(node_id))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.key.public_key()), critical=False)
            .sign(ca.key, None))


def endorsed(ca: ClusterCA, cert: x509.Certificate, node_id: str,
             key: ed25519.Ed25519PrivateKey) -> bool:
    """Whether ``cert`` is the CA's certificate of ``node_id`` for ``key`` (else re-issue)."""
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    public = cert.public_key()
    return (cert.serial_number == node_serial(node_id)
            and isinstance(public, ed25519.Ed25519PublicKey)
            and public.public_bytes_raw() == key.public_key().public_bytes_raw())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_node_key(data: bytes) -> ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertError(f"not a PEM private key: {exc}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise CertError("the node key is not an Ed25519 key")
    return key


def load_cert(data: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertError(f"not a PEM certificate: {exc}") from None


def sha256_fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 as browsers show it: ``AB:CD:...``."""
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def spki_pin(cert: x509.Certificate) -> str:
    """Base64 SHA-256 of the public key (Chromium's --ignore-certificate-errors-spki-list)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


# ---------------------------------------------------------------- revocation lists


@dataclass(frozen=True)
class Revocations:
    """A verified revocation list: the revoked node ids and the CRL's number."""

    number: int
    node_ids: frozenset[str]
    pem: bytes

    @property
    def digest(self) -> str:
        """A short digest of the revoked set (peers compare it to see whether to fetch)."""
        text = ",".join(sorted(self.node_ids))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def issue_revocations(ca: ClusterCA, node_ids: frozenset[str] | set[str], number: int,
                      now: dt.datetime | None = None) -> Revocations:
    """A CRL of ``node_ids`` with CRL number ``number``, signed by the cluster CA."""
    if len(node_ids) > MAX_REVOKED:
        raise CertError(f"at most {MAX_REVOKED} nodes can be revoked")
    now = now or dt.datetime.now(dt.UTC)
    builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.name)
               .last_update(now - dt.timedelta(days=1)).next_update(_CA_UNTIL)
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca.key.public_key()), critical=False))
    for node_id in sorted(node_ids):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(node_serial(node_id))
            .revocation_date(now).build())
    crl = builder.sign(ca.key, None)
    return Revocations(number, frozenset(node_ids), crl.public_bytes(serialization.Encoding.PEM))


def read_revocations(ca: ClusterCA, pem: bytes) -> Revocations:
    """A CRL checked against the cluster CA; CertError when it is not one of this cluster's."""
    if len(pem) > MAX_CRL_BYTES:
        raise CertError(f"a revocation list is at most {MAX_CRL_BYTES} bytes")
    try:
        crl = x509.load_pem_x509_crl(pem)
    except ValueError as exc:
        raise CertError(f"not a PEM revocation list: {exc}") from None
    if crl.issuer != ca.name or not crl.is_signature_valid(ca.key.public_key()):
        raise CertError("the revocation list is not signed with this cluster's key")
    try:
        number = int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except x509.ExtensionNotFound:
        number = 0
    ids = set()
    for i, entry in enumerate(crl):
        if i >= MAX_REVOKED:
            raise CertError(f"a revocation list has at most {MAX_REVOKED} entries")
        node_id = node_id_of_serial(entry.serial_number)
        if node_id is not None:
            ids.add(node_id)
    return Revocations(number, frozenset(ids), pem)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=False,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)
