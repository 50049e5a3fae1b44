"""The bounded event reader: every length a peer announces is capped before it is read."""

from __future__ import annotations

import asyncio
import json

import pytest

from appliance.wyoming.framing import (
    MAX_DATA_BYTES,
    MAX_HEADER_BYTES,
    MAX_PAYLOAD_BYTES,
    FramingError,
    read_event,
)


def _reader(data: bytes, *, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES + 1)
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


def _header(**fields: object) -> bytes:
    return json.dumps(fields).encode() + b"\n"


async def test_reads_header_data_and_payload_as_the_wyoming_package_writes_them():
    wire = _header(type="audio-chunk", data={"rate": 16000}, data_length=13,
                   payload_length=4) + b'{"width": 2}\n' + b"\x01\x02\x03\x04"
    event = await read_event(_reader(wire))
    assert event is not None
    assert event.type == "audio-chunk"
    assert event.data == {"rate": 16000, "width": 2}
    assert event.payload == b"\x01\x02\x03\x04"
    assert await read_event(_reader(b"")) is None  # a clean end between events


async def test_rejects_oversized_header_line():
    line = b'{"type": "describe", "pad": "' + b"x" * MAX_HEADER_BYTES + b'"}\n'
    with pytest.raises(FramingError) as err:
        await read_event(_reader(line))
    assert err.value.code == "header-too-large"


async def test_rejects_oversized_data_length_without_reading_it():
    # No data follows: a reader that trusted the length would wait for it forever.
    wire = _header(type="synthesize", data_length=MAX_DATA_BYTES + 1)
    with pytest.raises(FramingError) as err:
        await read_event(_reader(wire, eof=False))
    assert err.value.code == "data-too-large"
    assert str(MAX_DATA_BYTES) in str(err.value)


async def test_rejects_oversized_payload_length_without_reading_it():
    wire = _header(type="audio-chunk", payload_length=MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(FramingError) as err:
        await read_event(_reader(wire, eof=False))
    assert err.value.code == "payload-too-large"


@pytest.mark.parametrize("wire, words", [
    (b"not json\n", "not a JSON line"),
    (b"[1, 2]\n", "JSON object"),
    (_header(data={}), "event type"),
    (_header(type="x" * 65), "event type"),
    (_header(type="describe", payload_length=-1), "non-negative"),
    (_header(type="describe", payload_length="12"), "non-negative"),
    (_header(type="describe", data=[1]), "JSON object"),
    (_header(type="describe", data_length=3) + b"[1]", "JSON object"),
    (_header(type="describe", data_length=5) + b"{oops", "not valid JSON"),
])
async def test_rejects_malformed_events_with_a_reason(wire, words):
    with pytest.raises(FramingError) as err:
        await read_event(_reader(wire))
    assert err.value.code == "bad-event"
    assert words in str(err.value)


async def test_a_connection_closed_mid_event_is_an_error_not_an_event():
    for wire in (b'{"type": "describe"', _header(type="audio-chunk", payload_length=10) + b"ab"):
        with pytest.raises(FramingError) as err:
            await read_event(_reader(wire))
        assert err.value.code == "truncated"
