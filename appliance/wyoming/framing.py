"""Wyoming events on a stream, read with a bound on every length a peer announces.

An event is a JSON header line (``type``, optional ``data``, ``data_length``,
``payload_length``), then ``data_length`` bytes of JSON merged into ``data``,
then ``payload_length`` bytes of payload (audio). The ``wyoming`` package's
own reader trusts both lengths (``readexactly(n)`` of whatever the peer says);
this one refuses a header line, data or payload over its cap before reading
it, and a header that is not the shape above.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wyoming.event import Event, async_write_event

from appliance.errors import ApplianceError

#: Longest header line (the JSON before the newline).
MAX_HEADER_BYTES = 16 * 1024
#: Longest extra JSON data (synthesize text, a transcript to handle).
MAX_DATA_BYTES = 256 * 1024
#: Longest payload of one event (an audio chunk: 1 MiB is ~33 s of 16 kHz 16-bit mono).
MAX_PAYLOAD_BYTES = 1024 * 1024
#: Longest event type name.
MAX_TYPE_CHARS = 64


class FramingError(ApplianceError):
    """The peer broke the framing; the connection cannot go on. ``code`` names the case."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, or None at a clean end of stream; FramingError on a bad one.

    ``reader`` must have been made with ``limit >= MAX_HEADER_BYTES`` (asyncio's
    default of 64 KiB is).
    """
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise FramingError("the connection closed in the middle of an event header",
                           "truncated") from None
    except asyncio.LimitOverrunError:
        raise FramingError(f"event header line is longer than {MAX_HEADER_BYTES} bytes",
                           "header-too-large") from None
    if len(line) > MAX_HEADER_BYTES:
        raise FramingError(f"event header line is {len(line)} bytes; at most "
                           f"{MAX_HEADER_BYTES} are accepted", "header-too-large")
    header = _header(line)
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise FramingError("event data must be a JSON object", "bad-event")
    data_length = _length(header, "data_length", MAX_DATA_BYTES, "data-too-large")
    if data_length:
        extra = await _read_exactly(reader, data_length)
        try:
            more = json.loads(extra)
        except (ValueError, UnicodeDecodeError):
            raise FramingError("event data is not valid JSON", "bad-event") from None
        if not isinstance(more, dict):
            raise FramingError("event data must be a JSON object", "bad-event")
        data = {**data, **more}
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES, "payload-too-large")
    payload = await _read_exactly(reader, payload_length) if payload_length else None
    return Event(type=header["type"], data=data, payload=payload)


async def write_event(event: Event, writer: asyncio.StreamWriter) -> None:
    """Send one event (the ``wyoming`` package's writer: what we send is ours)."""
    await async_write_event(event, writer)


def _header(line: bytes) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise FramingError("event header is not a JSON line", "bad-event") from None
    if not isinstance(header, dict):
        raise FramingError("event header must be a JSON object", "bad-event")
    kind = header.get("type")
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_TYPE_CHARS:
        raise FramingError(f"event type must be a string of 1-{MAX_TYPE_CHARS} characters",
                           "bad-event")
    return header


def _length(header: dict[str, Any], key: str, cap: int, code: str) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FramingError(f"{key} must be a non-negative integer", "bad-event")
    if value > cap:
        raise FramingError(f"{key} is {value} bytes; at most {cap} are accepted", code)
    return value


async def _read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise FramingError("the connection closed in the middle of an event",
                           "truncated") from None
