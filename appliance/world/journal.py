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
damage (a flipped bit on the disk): the state is rebuilt from the records
before it, and the damaged record with every record after it (which may
build on it, so cannot be trusted) is moved aside, byte for byte, to
``journal.damaged-<time>``; an unreadable snapshot likewise goes to
``snapshot.damaged-<time>``. The node starts and says so (:class:`SetAside`);
docs/operations.md tells how to recover what was set aside.

A failed append (a full disk) is cut back off the file, so it leaves no
trace and later appends follow the last good record.
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)

JOURNAL_FILE = "journal.log"
SNAPSHOT_FILE = "snapshot.json"
DAMAGED_SUFFIX = ".damaged-"


class JournalBroken(ApplianceError, OSError):
    """A failed append could not be cut back off the file: no more writes can be trusted."""


@dataclass(frozen=True)
class SetAside:
    """Damaged data moved out of the way at start."""

    path: Path
    """Where the damaged bytes now are."""
    what: str
    """In words: which file, where the damage starts, how much was moved."""


@dataclass
class Replayed:
    """The state rebuilt from disk."""

    entries: dict[str, tuple[int, Any]]
    seq: int
    records: int
    """Records in the journal after the snapshot (drives the next compaction)."""
    dropped_tail_bytes: int
    set_aside: list[SetAside] = field(default_factory=list)


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
        self._fd: int | None = None

    def replay(self) -> Replayed:
        """Rebuild the state from the snapshot and the journal, cutting a torn tail off and
        setting damage aside."""
        self.directory.mkdir(parents=True, exist_ok=True)
        entries: dict[str, tuple[int, Any]] = {}
        set_aside: list[SetAside] = []
        snap_seq = 0
        if self.snapshot_path.exists():
            try:
                snap = json.loads(self.snapshot_path.read_bytes())
                snap_seq = int(snap["seq"])
                entries = {k: (int(v[0]), v[1]) for k, v in snap["entries"].items()}
            except (ValueError, KeyError, TypeError, IndexError, AttributeError,
                    RecursionError) as exc:
                entries, snap_seq = {}, 0
                moved = self._move_aside(self.snapshot_path)
                set_aside.append(SetAside(moved, f"the snapshot {self.snapshot_path.name} was "
                                                 f"unreadable ({str(exc)[:100]})"))
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
                    set_aside.append(self._set_aside_from(data, pos))
                    data = data[:pos]
                    good_end = pos
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
        if dropped or set_aside:
            with open(self.journal_path, "r+b") as fh:
                fh.truncate(good_end)
                fh.flush()
                os.fsync(fh.fileno())
        for aside in set_aside:
            log.error("world journal: %s; moved to %s (see docs/operations.md, 'A damaged "
                      "world journal')", aside.what, aside.path)
        self._open()
        return Replayed(entries=entries, seq=seq, records=records, dropped_tail_bytes=dropped,
                        set_aside=set_aside)

    def append(self, lines: list[bytes]) -> None:
        """Write ``lines`` and fsync; returns only when they are on disk.

        On failure (OSError, e.g. a full disk) the file is cut back to where it was, so
        nothing of ``lines`` stays; JournalBroken when even that fails.
        """
        assert self._fd is not None
        fd = self._fd
        start = os.lseek(fd, 0, os.SEEK_END)
        data = memoryview(b"".join(lines))
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, start)
                os.fsync(fd)
            except OSError as again:
                raise JournalBroken(again.errno, f"{exc}; cutting the failed write back off "
                                                 f"{self.journal_path} failed too: {again}"
                                    ) from exc
            raise

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
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        created = not self.journal_path.exists()
        # Unbuffered: a failed write must not linger in a buffer to be written later.
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                           0o600)
        if created:
            _fsync_dir(self.directory)

    def _set_aside_from(self, data: bytes, pos: int) -> SetAside:
        """Copy the journal from byte ``pos`` on into a file of its own (fsync'd)."""
        target = self._aside_path(self.journal_path)
        with open(target, "xb") as fh:
            fh.write(data[pos:])
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(self.directory)
        lines = data.count(b"\n", pos)
        return SetAside(target, f"a damaged record at byte {pos} of {JOURNAL_FILE}; it and the "
                                f"{lines - 1} record(s) after it ({len(data) - pos} bytes) were "
                                "set aside, the state is what it was before it")

    def _move_aside(self, path: Path) -> Path:
        target = self._aside_path(path)
        os.replace(path, target)
        _fsync_dir(self.directory)
        return target

    def _aside_path(self, path: Path) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}{DAMAGED_SUFFIX}{stamp}.{n}")
        return target


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
