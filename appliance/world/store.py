"""The local world model: keys -> JSON values in memory, made durable by the journal.

Writes are checked on the event loop against the latest accepted state (so
compare-and-set is atomic), then handed to one writer task that appends them
in batches with a single fsync per batch (group commit). A write becomes
visible (``get``, ``items``, ``version``, subscribers) only once its batch is
on disk, and is acknowledged then. A batch that fails (a full disk) fails
with every write queued after it (they were checked against it), is cut back
off the journal and leaves no trace: readers never saw it, versions are
handed out again. The store keeps working; only a journal that cannot even
be cut back is broken for good (unhealthy: the watchdog restarts the node).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from appliance.node import Component
from appliance.tasks import cancel_and_wait
from appliance.world.journal import Journal, JournalBroken, SetAside, encode_record
from appliance.world.model import (
    Change,
    Entry,
    NotFound,
    VersionConflict,
    WorldError,
    WorldFull,
    check_key,
    encode_value,
)

log = logging.getLogger(__name__)

#: Changes a subscriber may lag behind before it is cut off (it then re-reads the state).
SUBSCRIBER_QUEUE = 1000
#: Most records written by one fsync.
MAX_BATCH = 512
WORLD_DIR = "world"


class WorldSubscription:
    """A bounded queue of changes; a subscriber that falls too far behind is closed."""

    def __init__(self, owner: set[WorldSubscription]) -> None:
        self._owner = owner
        self._queue: asyncio.Queue[Change | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.overflowed = False
        owner.add(self)

    def push(self, change: Change) -> None:
        try:
            self._queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def close(self) -> None:
        if self in self._owner:
            self._owner.discard(self)
            # Make room for the end marker so a waiting reader wakes up.
            while self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[Change]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item


class LocalWorld(Component):
    """The world model of this node, kept in ``<state_dir>/world``."""

    name = "world"
    start_timeout_s = 60.0

    def __init__(self, directory: Path, *, compact_after: int = 10000,
                 max_value_bytes: int = 64 * 1024) -> None:
        self.directory = directory
        self.compact_after = compact_after
        self.max_value_bytes = max_value_bytes
        self._journal = Journal(directory)
        self._entries: dict[str, Entry] = {}
        """The durable state: what readers see."""
        self._accepted: dict[str, Change] = {}
        """Writes checked and queued but not yet durable, latest per key (for checks only)."""
        self._seq = 0
        """The version of the last accepted write."""
        self._durable_seq = 0
        self._records = 0
        self._pending: list[tuple[bytes, Change, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None
        self._subscribers: set[WorldSubscription] = set()
        self._failed: str = ""
        self.last_write_error = ""
        """Why the latest write failed, until one succeeds ("" when none failed)."""
        self.set_aside: list[SetAside] = []
        self.compactions = 0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        replayed = await asyncio.to_thread(self._journal.replay)
        self._entries = {k: Entry(k, v, ver) for k, (ver, v) in replayed.entries.items()}
        self._seq = self._durable_seq = replayed.seq
        self._records = replayed.records
        self.set_aside = replayed.set_aside
        log.info("world model: %d keys at version %d from %s", len(self._entries), self._seq,
                 self.directory)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(),
                                                              name="world-journal")

    async def stop(self) -> None:
        for sub in list(self._subscribers):
            sub.close()
        if self._writer is not None:
            # Let queued writes reach the disk before the file closes.
            with contextlib.suppress(Exception):
                await self._flush_pending()
            await cancel_and_wait([self._writer])
            self._writer = None
        await asyncio.to_thread(self._journal.close)

    def healthy(self) -> bool:
        return not self._failed

    def describe(self) -> dict[str, Any]:
        return {"mode": "local", "keys": len(self._entries), "version": self._durable_seq,
                "subscribers": len(self._subscribers), "error": self._failed or None,
                "last_write_error": self.last_write_error or None,
                "set_aside": [{"path": str(s.path), "what": s.what} for s in self.set_aside]}

    def status_fragment(self) -> str:
        if self._failed:
            return "WORLD JOURNAL BROKEN"
        if self.set_aside:
            return f"WORLD JOURNAL DAMAGE SET ASIDE ({self.set_aside[0].path.name})"
        if self.last_write_error:
            return f"world writes failing ({self.last_write_error[:60]})"
        return ""

    # ------------------------------------------------------------ WorldModel

    @property
    def version(self) -> int:
        """The version of the latest durable write."""
        return self._durable_seq

    async def get(self, key: str) -> Entry | None:
        return self._entries.get(check_key(key))

    async def items(self) -> list[Entry]:
        return sorted(self._entries.values(), key=lambda e: e.key)

    async def set(self, key: str, value: Any, expected_version: int | None = None) -> Entry:
        check_key(key)
        text = encode_value(value, self.max_value_bytes)
        self._check_version(key, expected_version)
        self._seq += 1
        # A private copy, so callers mutating their object cannot change the state.
        change = Change("set", key, json.loads(text), self._seq)
        await self._commit(encode_record(change.version, "set", key, text), change)
        return Entry(key, change.value, change.version)

    async def delete(self, key: str, expected_version: int | None = None) -> int:
        check_key(key)
        if self._latest_version(key) == 0:
            raise NotFound(f"no key {key!r}")
        self._check_version(key, expected_version)
        self._seq += 1
        change = Change("delete", key, None, self._seq)
        await self._commit(encode_record(change.version, "delete", key, None), change)
        return change.version

    def subscribe(self) -> WorldSubscription:
        return WorldSubscription(self._subscribers)

    # ------------------------------------------------------------ internals

    def _latest_version(self, key: str) -> int:
        """The key's version counting accepted writes (0: absent or deleted)."""
        accepted = self._accepted.get(key)
        if accepted is not None:
            return accepted.version if accepted.op == "set" else 0
        current = self._entries.get(key)
        return current.version if current else 0

    def _check_version(self, key: str, expected: int | None) -> None:
        if self._failed:
            raise WorldError(f"the world journal failed: {self._failed}")
        if expected is None:
            return
        actual = self._latest_version(key)
        if actual != expected:
            raise VersionConflict(key, expected, actual)

    async def _commit(self, line: bytes, change: Change) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._accepted[change.key] = change
        self._pending.append((line, change, fut))
        self._wake.set()
        await fut

    def _made_durable(self, change: Change) -> None:
        if change.op == "set":
            self._entries[change.key] = Entry(change.key, change.value, change.version)
        else:
            self._entries.pop(change.key, None)
        self._durable_seq = change.version
        if self._accepted.get(change.key) is change:
            del self._accepted[change.key]
        self._publish(change)

    def _fail_pending(self, batch: list[tuple[bytes, Change, asyncio.Future[None]]],
                      exc: OSError) -> None:
        """Fail ``batch`` and every write queued after it; forget them all."""
        failed, self._pending = batch + self._pending, []
        self._accepted.clear()
        self._seq = self._durable_seq
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        self.last_write_error = "the disk is full" if full else str(exc)
        if isinstance(exc, JournalBroken):
            self._failed = str(exc)
        log.error("world journal write failed, %d write(s) refused and forgotten: %s",
                  len(failed), exc)
        error: WorldError = (WorldFull(f"the write was not stored: the disk is full ({exc})")
                             if full else
                             WorldError(f"the write was not stored: {exc}"))
        for _, _, fut in failed:
            if not fut.done():
                fut.set_exception(error)

    def _publish(self, change: Change) -> None:
        for sub in list(self._subscribers):
            sub.push(change)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush_pending()

    async def _flush_pending(self) -> None:
        async with self._flush_lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await asyncio.to_thread(self._journal.append, [line for line, _, _ in batch])
            except OSError as exc:
                self._fail_pending(batch, exc)
                return
            self.last_write_error = ""
            for _, change, fut in batch:
                self._made_durable(change)
                if not fut.done():
                    fut.set_result(None)
            self._records += len(batch)
            if self._records >= self.compact_after:
                await self._compact()

    async def _compact(self) -> None:
        snapshot = {k: (e.version, e.value) for k, e in self._entries.items()}
        seq = self._durable_seq
        try:
            await asyncio.to_thread(self._journal.compact, snapshot, seq)
        except OSError as exc:
            log.error("world snapshot failed (the journal keeps growing): %s", exc)
            return
        self._records = 0
        self.compactions += 1
        log.info("world model: snapshot at version %d (%d keys)", seq, len(snapshot))
