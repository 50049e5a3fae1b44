"""Logging to stderr, or straight to the journal under systemd; rate limits for floods.

Under systemd (``$JOURNAL_STREAM`` names our stderr) records go to journald's
native socket, one datagram per record, so a traceback is one journal entry
(the stderr stream would make each of its lines an entry of its own) and the
priority, logger and source line are fields. Where that socket cannot be
used, stderr with ``<N>`` priority prefixes, a record's lines joined into one.
Elsewhere, stderr with timestamps.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
import time

#: Between INFO and WARNING: a normal but noteworthy state (syslog's notice).
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")

# syslog priorities, which journald reads from a "<N>" line prefix or a PRIORITY field.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, NOTICE: 5, logging.WARNING: 4,
             logging.ERROR: 3, logging.CRITICAL: 2}
JOURNAL_SOCKET = "/run/systemd/journal/socket"
#: Longest message sent as one datagram; a longer one (a huge traceback) is cut.
MAX_JOURNAL_MESSAGE = 48 * 1024
IDENTIFIER = "hybrid-agent"


def _priority(levelno: int) -> int:
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


class _JournalFormatter(logging.Formatter):
    """stderr under journald: a ``<N>`` prefix, the record on one line."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).replace("\n", " \\n ")
        return f"<{_priority(record.levelno)}>{text}"


class JournalHandler(logging.Handler):
    """journald's native protocol over its datagram socket (see systemd.journal-fields(7))."""

    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.connect(path)  # fails (OSError) where journald is not there

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            if len(message) > MAX_JOURNAL_MESSAGE:
                message = message[:MAX_JOURNAL_MESSAGE] + "\n[... cut]"
            fields = {"MESSAGE": message, "PRIORITY": str(_priority(record.levelno)),
                      "SYSLOG_IDENTIFIER": IDENTIFIER, "LOGGER": record.name,
                      "CODE_FILE": record.pathname, "CODE_LINE": str(record.lineno),
                      "CODE_FUNC": record.funcName}
            self.sock.send(encode_fields(fields))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.sock.close()
        super().close()


def encode_fields(fields: dict[str, str]) -> bytes:
    """One native-protocol datagram: ``KEY=value`` lines, or length-prefixed multi-line values."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", errors="replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


def under_journald() -> bool:
    """Whether stderr is the journal stream systemd connected (``$JOURNAL_STREAM``)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def setup(level: str, *, journal: bool | None = None) -> None:
    """Log at ``level``: to the journal under systemd, else to stderr with timestamps."""
    if journal is None:
        journal = under_journald()
    handler: logging.Handler
    if journal:
        try:
            handler = JournalHandler()
            handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        except OSError:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class RateLimit:
    """At most one log line per ``interval_s`` for one kind of event; the rest are counted
    and the count goes out with the next line (floods from the network stay small)."""

    def __init__(self, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self._next = 0.0
        self.suppressed = 0

    def ready(self) -> int | None:
        """None to stay quiet; else how many events were kept quiet since the last line."""
        now = time.monotonic()
        if now < self._next:
            self.suppressed += 1
            return None
        self._next = now + self.interval_s
        quiet, self.suppressed = self.suppressed, 0
        return quiet
