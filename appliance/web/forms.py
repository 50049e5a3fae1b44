"""``multipart/form-data`` bodies, parsed from bytes with a bound on every count and size.

The body is read whole first (the request-signing guard may already have read
it, and ``http.max_body_bytes`` bounds it), then split at the boundary with
``bytes.find``: linear, in C, no line-by-line parsing of a binary upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

from appliance.web.errors import ApiError

#: Parts in one form.
MAX_PARTS = 32
#: Bytes of one part's headers.
MAX_PART_HEADER_BYTES = 4096
MAX_BOUNDARY_CHARS = 70  # RFC 2046


@dataclass(frozen=True)
class Part:
    """One form field: a value, or a file with its name and content type."""

    name: str
    data: bytes
    filename: str | None
    content_type: str


def boundary_of(content_type: str) -> str:
    """The boundary of a ``multipart/form-data`` Content-Type; 400 if it is not one."""
    msg = Message()
    msg["content-type"] = content_type
    boundary = msg.get_param("boundary")
    if msg.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) \
            or not 0 < len(boundary) <= MAX_BOUNDARY_CHARS:
        raise ApiError(400, "the body must be multipart/form-data (a file upload)",
                       code="invalid_request")
    return boundary


def parse(body: bytes, boundary: str) -> list[Part]:
    """The parts of a form body; 400 naming what is malformed."""
    delimiter = b"--" + boundary.encode("latin-1")
    pos = body.find(delimiter)
    if pos < 0:
        raise _malformed("the boundary never appears")
    parts: list[Part] = []
    while True:
        pos += len(delimiter)
        if body[pos:pos + 2] == b"--":
            return parts
        if body[pos:pos + 2] != b"\r\n":
            raise _malformed("a boundary line does not end in CRLF")
        pos += 2
        end = body.find(b"\r\n" + delimiter, pos)
        if end < 0:
            raise _malformed("the closing boundary is missing")
        head_end = body.find(b"\r\n\r\n", pos, min(end, pos + MAX_PART_HEADER_BYTES))
        if head_end < 0 and body[pos:pos + 2] != b"\r\n":
            raise _malformed(f"a part's headers are missing or longer than "
                             f"{MAX_PART_HEADER_BYTES} bytes")
        head, data_start = (b"", pos + 2) if head_end < 0 else (body[pos:head_end],
                                                                 head_end + 4)
        parts.append(_part(head, body[data_start:end]))
        if len(parts) > MAX_PARTS:
            raise _malformed(f"more than {MAX_PARTS} parts")
        pos = end + 2


def _part(head: bytes, data: bytes) -> Part:
    msg = Message()
    for line in head.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            msg[name.strip()] = value.strip()
    field = msg.get_param("name", header="content-disposition")
    if not isinstance(field, str) or not field:
        raise _malformed("a part has no Content-Disposition name")
    filename = msg.get_filename()
    return Part(name=field[:128], data=data, filename=filename[:256] if filename else None,
                content_type=msg.get_content_type())


def _malformed(why: str) -> ApiError:
    return ApiError(400, f"malformed multipart/form-data body: {why}", code="invalid_request")
