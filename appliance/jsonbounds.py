"""JSON from the network with its nesting depth bounded before it is parsed.

Python's json parser recurses once per level, so a body of 100,000 ``[``
ends in a RecursionError, and a value a few hundred levels deep parses but
cannot always be serialised back. :func:`loads` checks the depth on the raw
bytes first (strings stripped, then a running count of brackets that stops at
the first level past the limit, all in C) and refuses anything deeper than
:data:`MAX_DEPTH` with :class:`JsonTooDeep`, a ``ValueError`` whose message
names the limit.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from appliance.errors import ApplianceError

#: Deepest nesting accepted anywhere: far more than any API here needs, far less than
#: the interpreter's recursion limit (about 1000), so every accepted value serialises.
MAX_DEPTH = 64

# The closing quote is optional so an unterminated string ends the scan instead of
# being retried from every later quote (which would take quadratic time).
_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"?', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [1 if b in b"[{" else -1 for b in range(256)]


class JsonTooDeep(ApplianceError, ValueError):
    """The document nests deeper than allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nests deeper than {limit} levels")
        self.limit = limit


def depth_exceeds(data: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON text ``data`` nests deeper than ``limit`` containers.

    Malformed bracket structure is left to the parser to report.
    """
    raw = data.encode() if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    # A running depth, stopping at the first level past the limit; every step runs in C.
    return any(map(limit.__lt__, accumulate(map(_STEP.__getitem__, brackets))))


def loads(data: bytes | str, limit: int = MAX_DEPTH) -> Any:
    """``json.loads(data)``, refusing a document deeper than ``limit`` (JsonTooDeep)."""
    if depth_exceeds(data, limit):
        raise JsonTooDeep(limit)
    return json.loads(data)
