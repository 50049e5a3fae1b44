"""Server-sent events from a peer, read as they arrive: the one reader of every SSE stream.

A stream is lines (LF or CRLF) of ``field: value``; a blank line ends an event.
:class:`Reader` reads the lines of a response body, each bounded
(:data:`MAX_LINE_BYTES`), and hands back the fields in order, so a caller that
only wants ``data:`` (an OpenAI stream) and one that pairs ``event:`` with
``data:`` (the world's change feed) read the same way. :func:`events_end` finds
where whole events end in raw bytes, for a relay that passes them on unparsed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

#: Longest line accepted from a peer (an event's data is one line).
MAX_LINE_BYTES = 1024 * 1024

ReadSome = Callable[[], Awaitable[bytes]]
"""The next piece of a body, ``b""`` at its end (``Response.read_some``)."""


class Reader:
    """The fields of an SSE body, one line at a time."""

    def __init__(self, read_some: ReadSome, max_line: int = MAX_LINE_BYTES) -> None:
        self._read_some = read_some
        self._max_line = max_line
        self._buf = b""

    async def line(self) -> bytes | None:
        """The next line with its end of line; None at the end of the body. ValueError
        for a line over the bound."""
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line, self._buf = self._buf[:end + 1], self._buf[end + 1:]
                return line
            if len(self._buf) > self._max_line:
                raise ValueError(f"an event line of over {self._max_line} bytes")
            piece = await self._read_some()
            if not piece:
                return None
            self._buf += piece

    async def field(self) -> tuple[str, str] | None:
        """The next ``(name, value)``; ``("", "")`` for the blank line that ends an event;
        None at the end of the body."""
        line = await self.line()
        return None if line is None else parse_field(line)


def parse_field(line: bytes) -> tuple[str, str]:
    """``(name, value)`` of one line: ``data: x`` -> ("data", "x"); a comment (``:``) is
    ("", ""), as the blank line is; a line with no colon is a name with an empty value."""
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    if not text or text.startswith(":"):
        return "", ""
    name, colon, value = text.partition(":")
    if colon and value.startswith(" "):
        value = value[1:]
    return name, value


def events_end(buf: bytes) -> int:
    """Where the last whole event in ``buf`` ends (0: none yet); LF or CRLF lines."""
    lf = buf.rfind(b"\n\n")
    crlf = buf.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
