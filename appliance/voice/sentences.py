"""Cutting a stream of text deltas into sentences, so speech can start before the answer ends."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (or their CJK forms) or a newline, followed by whitespace;
# "e.g. " style abbreviations are rare enough in short spoken replies to accept.
_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"')\]]*\s+|\n+")
#: A first sentence shorter than this waits for more text (a lone "1." is not a sentence).
MIN_SENTENCE_CHARS = 8
#: Without punctuation, speak anyway once this much text piled up (cut at a space).
MAX_SENTENCE_CHARS = 300


class SentenceSplitter:
    """Feed text deltas; get back the sentences they completed."""

    def __init__(self) -> None:
        self._buf = ""

    def feed(self, delta: str) -> list[str]:
        self._buf += delta
        out: list[str] = []
        while True:
            cut = self._next_cut()
            if cut is None:
                break
            sentence, self._buf = self._buf[:cut].strip(), self._buf[cut:]
            if sentence:
                out.append(sentence)
        return out

    def flush(self) -> list[str]:
        """The rest, at the end of the stream."""
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []

    def _next_cut(self) -> int | None:
        for m in _END.finditer(self._buf):
            if len(self._buf[: m.start()].strip()) >= MIN_SENTENCE_CHARS:
                return m.end()
        if len(self._buf) > MAX_SENTENCE_CHARS:
            space = self._buf.rfind(" ", 0, MAX_SENTENCE_CHARS)
            return space + 1 if space > 0 else MAX_SENTENCE_CHARS
        return None
