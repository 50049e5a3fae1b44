"""The world model's durable journal: append-only records, fsync'd, compacted into snapshots.

On disk, in the world directory:

- ``journal.log``: one record per line, ``<crc32 hex> <json>\\n``; the JSON is
  ``{"s": seq, "op": "set"|"delete", "k": key, "v": value}``.
- ``snapshot.json``: ``{"seq": N, "entries": {key: [version, value]}}``,
  written to a temporary file, fsync'd and renamed into place, so it is either
  the old snapshot or the new one, never half of one.

Replay loads the snapshot, then the records whose seq is above the
snapshot's. A crash can leave the last record half-written (a torn tail):
it has no newline or a bad checksum, so it is dropped and the file is cut
back to the last good record. A bad record that is not the last one is real
corruption and stops the start instead of silently losing later data.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.log"
SNAPSHOT_FILE = "snapshot.json"


class JournalCorrupt(Exception):
    """A record in the middle of the journal (or the snapshot) is damaged."""


@dataclass
class Replayed:
    """The state rebuilt from disk."""

    entries: dict[str, tuple[int, Any]]
    seq: int
    records: int
    """Records in the journal after the snapshot (drives the next compaction)."""
    dropped_tail_bytes: int


def encode_record(seq: int, op: str, key: str, value_json: str | None) -> bytes:
    """One journal line; ``value_json`` is already canonical JSON (None for a delete)."""
    payload = (f'{{"s":{seq},"op":"{op}","k":{json.dumps(key)},"v":'
               f'{value_json if value_json is not None else "null"}}}').encode()
    return b"%08x " % zlib.crc32(payload) + payload + b"\n"


class Journal:
    """Blocking file operations; the store calls them from one worker thread at a time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.journal_path = directory / JOURNAL_FILE
        self.snapshot_path = directory / SNAPSHOT_FILE
        self._fh: Any = None

    def replay(self) -> Replayed:
        """Rebuild the state from the snapshot and the journal, cutting a torn tail off."""
        self.directory.mkdir(parents=True, exist_ok=True)
        entries: dict[str, tuple[int, Any]] = {}
        snap_seq = 0
        if self.snapshot_path.exists():
            try:
                snap = json.loads(self.snapshot_path.read_bytes())
                snap_seq = int(snap["seq"])
                entries = {k: (int(v[0]), v[1]) for k, v in snap["entries"].items()}
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise JournalCorrupt(f"{self.snapshot_path}: unreadable snapshot: {exc}") from None
        seq = snap_seq
        records = 0
        data = self.journal_path.read_bytes() if self.journal_path.exists() else b""
        good_end = 0
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # no newline: the write of the last record was cut short
            record = _decode(data[pos:nl])
            if record is None:
                if data.find(b"\n", nl + 1) >= 0:
                    raise JournalCorrupt(f"{self.journal_path}: damaged record at byte {pos} "
                                         "followed by more records")
                break  # the last line is damaged: a torn tail
            rseq, op, key, value = record
            if rseq > snap_seq:
                if op == "set":
                    entries[key] = (rseq, value)
                else:
                    entries.pop(key, None)
                records += 1
            seq = max(seq, rseq)
            pos = good_end = nl + 1
        dropped = len(data) - good_end
        if dropped:
            log.warning("world journal: dropping a torn last record (%d bytes)", dropped)
            with open(self.journal_path, "r+b") as fh:
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())
        self._open()
        return Replayed(entries=entries, seq=seq, records=records, dropped_tail_bytes=dropped)

    def append(self, lines: list[bytes]) -> None:
        """Write ``lines`` and fsync; returns only when they are on disk."""
        self._fh.write(b"".join(lines))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def compact(self, entries: dict[str, tuple[int, Any]], seq: int) -> None:
        """Write a snapshot of ``entries`` at ``seq``, then start an empty journal."""
        tmp = self.snapshot_path.with_suffix(".tmp")
        body = json.dumps({"seq": seq, "entries": {k: [v, val] for k, (v, val) in
                                                    entries.items()}},
                          separators=(",", ":"), ensure_ascii=False).encode()
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.snapshot_path)
        _fsync_dir(self.directory)
        # Records up to seq are in the snapshot now; replay skips any left behind.
        self._fh.truncate(0)
        self._fh.seek(0)
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def _open(self) -> None:
        created = not self.journal_path.exists()
        self._fh = open(self.journal_path, "ab")
        if created:
            _fsync_dir(self.directory)


def _decode(line: bytes) -> tuple[int, str, str, Any] | None:
    if len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        rec = json.loads(payload)
        op = rec["op"]
        if op not in ("set", "delete"):
            return None
        return int(rec["s"]), op, str(rec["k"]), rec["v"]
    except (ValueError, KeyError, TypeError):
        return None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
