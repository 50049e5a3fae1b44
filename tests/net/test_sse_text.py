"""The one SSE reader and the one cleaner of peer text (appliance.net.sse, appliance.net.text)."""

from __future__ import annotations

import pytest

from appliance.net import sse, text
from appliance.net.peer import error_message


def pieces(*chunks: bytes):
    it = iter(chunks)

    async def read_some() -> bytes:
        return next(it, b"")

    return read_some


async def fields(reader: sse.Reader) -> list[tuple[str, str]]:
    out = []
    while (field := await reader.field()) is not None:
        out.append(field)
    return out


async def test_fields_across_pieces_with_crlf_comments_and_one_space_dropped() -> None:
    reader = sse.Reader(pieces(b": hi\r\nevent: cha", b"nge\r\ndata: {\"a\"", b": 1}\r\n\r\n",
                               b"data:[DONE]\n"))
    assert await fields(reader) == [("", ""), ("event", "change"), ("data", '{"a": 1}'),
                                    ("", ""), ("data", "[DONE]")]


async def test_a_line_over_the_bound_is_refused() -> None:
    reader = sse.Reader(pieces(b"data: " + b"x" * 100, b"x" * 100), max_line=150)
    with pytest.raises(ValueError, match="over 150 bytes"):
        await reader.field()


def test_events_end_finds_the_last_whole_event() -> None:
    assert sse.events_end(b"data: a\n\ndata: b") == len(b"data: a\n\n")
    assert sse.events_end(b"data: a\r\n\r\n") == len(b"data: a\r\n\r\n")
    assert sse.events_end(b"data: a\n") == 0


def test_peer_text_is_printable_and_capped() -> None:
    hostile = "bad\x1b[31m\r\nnews\x00" + "y" * 1000
    assert text.clean(hostile, 20) == "bad[31mnews" + "y" * 9
    assert len(text.message(hostile)) == text.MAX_MESSAGE_CHARS
    body = {"error": {"message": "no\x07 such\nmodel" + "z" * 900}}
    assert error_message(body, 404) == ("no suchmodel" + "z" * 900)[:text.MAX_MESSAGE_CHARS]
    assert error_message("<html>", 502) == "HTTP 502"
