"""The box's HTTPS certificate for people's browsers: self-signed per box, or the user's own.

Made at install (or at the first start) as an ECDSA P-256 key and a
self-signed certificate naming the box (its hostname, ``hostname.local``,
``localhost``) and its addresses at that time. A browser cannot know it, so
people trust it by its **fingerprint**, which ``install.sh``, ``hybrid-agent
status`` and ``hybrid-agent devices add`` print: the certificate's SHA-256
as browsers show it, and the public key's pin for tools that take one
(Chromium's ``--ignore-certificate-errors-spki-list``, ``curl --pinnedpubkey``).
A user's own certificate and key (``http.tls_cert``, ``http.tls_key``) replace it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.security import certs
from appliance.security.certs import CertError
from appliance.security.files import write_atomic
from appliance.security.nodetls import PRIVATE_MODE, PUBLIC_MODE

WEB_KEY_FILE = "web.key"
WEB_CERT_FILE = "web.crt"
VALID_YEARS = 10


@dataclass(frozen=True)
class WebCert:
    """The certificate the box shows browsers, and how to recognise it."""

    cert_path: Path
    key_path: Path
    fingerprint: str
    """SHA-256 of the certificate, ``AB:CD:...`` (what a browser's certificate viewer shows)."""
    spki: str
    """Base64 SHA-256 of the public key (Chromium's and curl's pin)."""
    generated: bool

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_path, self.key_path)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def load_web_cert(tls_dir: Path, cert_file: str = "", key_file: str = "") -> WebCert:
    """The user's certificate when configured, else the box's own (made on first use)."""
    if cert_file or key_file:
        if not (cert_file and key_file):
            raise CertError("http.tls_cert and http.tls_key go together: set both or neither")
        cert_path, key_path = Path(cert_file), Path(key_file)
        generated = False
    else:
        cert_path, key_path = tls_dir / WEB_CERT_FILE, tls_dir / WEB_KEY_FILE
        generated = True
        if not cert_path.is_file() or not key_path.is_file():
            create_web_cert(tls_dir)
    try:
        cert = certs.load_cert(cert_path.read_bytes())
    except OSError as exc:
        raise CertError(f"cannot read the HTTPS certificate {cert_path}: "
                        f"{exc.strerror or exc}") from None
    web = WebCert(cert_path, key_path, certs.sha256_fingerprint(cert), certs.spki_pin(cert),
                  generated)
    try:
        web.server_context()
    except (ssl.SSLError, OSError) as exc:
        raise CertError(f"the HTTPS certificate {cert_path} and key {key_path} do not load "
                        f"together: {exc}") from None
    return web


def create_web_cert(tls_dir: Path, hostname: str | None = None,
                    addresses: list[str] | None = None) -> Path:
    """Make the box's key and self-signed certificate under ``tls_dir``; the certificate path."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    host = (hostname or socket.gethostname()).split(".")[0] or "hybrid-agent"
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in
                                     dict.fromkeys([host, f"{host}.local", "localhost"])]
    for text in ["127.0.0.1", "::1", *(addresses or [])]:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(text.split("%", 1)[0])))
        except ValueError:
            continue
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"hybrid-agent on {host}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365 * VALID_YEARS))
            .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = tls_dir / WEB_KEY_FILE, tls_dir / WEB_CERT_FILE
    write_atomic(key_path, key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()), PRIVATE_MODE)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), PUBLIC_MODE)
    return cert_path
