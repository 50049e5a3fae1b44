"""The SNI of a real TLS ClientHello, and nothing from anything else (hostile bytes)."""

from __future__ import annotations

import ssl

import pytest

from appliance.web.clienthello import record_length, server_name


def client_hello(name: str | None) -> bytes:
    """The first bytes Python's TLS client sends to a server ``name`` (None: an address)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_name_a_client_asks_for_is_read_from_its_hello():
    hello = client_hello("7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a.node.hybrid-agent")
    assert record_length(hello) == len(hello)
    assert server_name(hello) == "7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a.node.hybrid-agent"
    assert server_name(client_hello("Kitchen.Local")) == "kitchen.local"
    assert server_name(client_hello("10.0.0.5")) is None  # no SNI for an address


@pytest.mark.parametrize("data", [b"", b"GET / HTTP/1.1\r\n", b"\x16\x03\x01", b"\x16" * 40,
                                  b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03"])
def test_anything_else_has_no_name(data):
    assert server_name(data) is None


def test_a_cut_hello_has_no_name_rather_than_a_wrong_one():
    hello = client_hello("a.node.hybrid-agent")
    for cut in range(5, len(hello) - 1, 7):
        name = server_name(hello[:cut])
        assert name in (None, "a.node.hybrid-agent")
