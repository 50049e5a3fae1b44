"""Cutting a stream of text deltas into speakable pieces, so speech starts before the answer ends.

Pieces end at sentence ends. The first piece of a reply may also end at a
clause (a comma, semicolon, colon or dash) once it is long enough, or after its
first few words, because the first audio is what the listener waits for (a
short piece is generated and synthesised sooner, and the rest is ready before
it has been heard); a run-on sentence is cut at a clause, else at a space, so
no piece grows long before it can be spoken.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? (or their CJK forms) or a newline, followed by whitespace;
# "e.g. " style abbreviations are rare enough in short spoken replies to accept.
_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"')\]]*\s+|\n+")
_CLAUSE = re.compile(r"(?<=[,;:\u3001\uff0c])\s+|\s+[-\u2013\u2014]\s+")
_WORD_END = re.compile(r"(?<=\S)\s+")
#: A sentence shorter than this waits for more text (a lone "1." is not a sentence).
MIN_SENTENCE_CHARS = 8
#: The first piece may end at a clause once it has this many characters.
MIN_FIRST_CLAUSE_CHARS = 20
#: The first piece may end after this many complete words.
FIRST_PIECE_WORDS = 4
#: Any piece may end at a clause once it has this many characters.
LONG_CLAUSE_CHARS = 100
#: Past this without any boundary, cut at the last space.
MAX_PIECE_CHARS = 200


class SentenceSplitter:
    """Feed text deltas; get back the pieces they completed."""

    def __init__(self) -> None:
        self._buf = ""
        self._first = True

    def feed(self, delta: str) -> list[str]:
        self._buf += delta
        out: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                break
            piece, self._buf = self._buf[:cut].strip(), self._buf[cut:]
            if piece:
                out.append(piece)
                self._first = False
        return out

    def flush(self) -> list[str]:
        """The rest, at the end of the stream."""
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []

    def _next_cut(self) -> int | None:
        buf = self._buf
        for m in _END.finditer(buf):
            if len(buf[: m.start()].strip()) >= MIN_SENTENCE_CHARS:
                return m.end()
        clause_min = MIN_FIRST_CLAUSE_CHARS if self._first else LONG_CLAUSE_CHARS
        for m in _CLAUSE.finditer(buf):
            if len(buf[: m.start()].strip()) >= clause_min:
                return m.end()
        if self._first:
            ends = [m for m in _WORD_END.finditer(buf) if buf[: m.start()].strip()]
            if len(ends) >= FIRST_PIECE_WORDS:
                end = ends[FIRST_PIECE_WORDS - 1]
                if len(buf[: end.start()].strip()) >= MIN_SENTENCE_CHARS:
                    return end.end()
        if len(buf) > MAX_PIECE_CHARS:
            space = buf.rfind(" ", 0, MAX_PIECE_CHARS)
            return space + 1 if space > 0 else MAX_PIECE_CHARS
        return None
