"""install.sh's last words name the box's HTTPS certificate by the fingerprint browsers show."""

from __future__ import annotations

from appliance.security.certs import load_cert, sha256_fingerprint
from appliance.security.webcert import create_web_cert
from installer.__main__ import https_lines


def test_the_fingerprint_install_prints_is_the_certificates(tmp_path):
    assert https_lines(tmp_path) == ""  # no certificate yet: nothing to say
    cert = create_web_cert(tmp_path / "tls", hostname="kitchen")
    text = https_lines(tmp_path)
    assert sha256_fingerprint(load_cert(cert.read_bytes())) in text
    assert "devices add NAME" in text
