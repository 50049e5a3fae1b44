"""The server name (SNI) a TLS ClientHello asks for, read from the bytes before the handshake.

The listener (appliance.web.listener) peeks at a connection's first bytes to
pick the context: a node of the cluster asks for a name under
``node.hybrid-agent`` and gets mutual TLS; anything else gets the box's HTTPS
certificate. Everything here is hostile input: each length is checked against
what is there, and anything unexpected means "no name".
"""

from __future__ import annotations

#: A TLS record starts with this byte (a handshake record).
HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_SERVER_NAME = 0x0000
_HOST_NAME = 0x00
MAX_NAME = 255


def record_length(data: bytes) -> int | None:
    """The whole first record's length (header included), or None if it is not TLS."""
    if len(data) < 5 or data[0] != HANDSHAKE:
        return None
    return 5 + int.from_bytes(data[3:5], "big")


def server_name(data: bytes) -> str | None:
    """The host name of the SNI extension in the ClientHello that ``data`` starts with."""
    end = record_length(data)
    if end is None:
        return None
    body = memoryview(data)[5:min(end, len(data))]
    try:
        return _parse(body)
    except IndexError:
        return None


def _parse(hello: memoryview) -> str | None:
    if hello[0] != _CLIENT_HELLO:
        return None
    pos = 4 + 2 + 32  # handshake header, client version, random
    pos += 1 + hello[pos]  # session id
    pos += 2 + int.from_bytes(hello[pos:pos + 2], "big")  # cipher suites
    pos += 1 + hello[pos]  # compression methods
    if pos + 2 > len(hello):
        return None
    ext_end = min(pos + 2 + int.from_bytes(hello[pos:pos + 2], "big"), len(hello))
    pos += 2
    while pos + 4 <= ext_end:
        kind = int.from_bytes(hello[pos:pos + 2], "big")
        size = int.from_bytes(hello[pos + 2:pos + 4], "big")
        pos += 4
        if kind == _SERVER_NAME:
            return _host_name(hello[pos:min(pos + size, ext_end)])
        pos += size
    return None


def _host_name(ext: memoryview) -> str | None:
    pos = 2  # the list's length
    while pos + 3 <= len(ext):
        kind, size = ext[pos], int.from_bytes(ext[pos + 1:pos + 3], "big")
        pos += 3
        if kind == _HOST_NAME:
            raw = bytes(ext[pos:pos + size])
            if size > MAX_NAME or len(raw) != size:
                return None
            try:
                return raw.decode("ascii").lower()
            except UnicodeDecodeError:
                return None
        pos += size
    return None
