"""The local world model: keys -> JSON values in memory, made durable by the journal.

Writes are checked and applied on the event loop (so compare-and-set is
atomic), then handed to one writer task that appends them in batches with a
single fsync per batch (group commit); a write is acknowledged only after
its batch is on disk. Subscribers hear about a write after it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from appliance.node import Component
from appliance.tasks import cancel_and_wait
from appliance.world.journal import Journal, encode_record
from appliance.world.model import (
    Change,
    Entry,
    NotFound,
    VersionConflict,
    WorldError,
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
        self._seq = 0
        self._records = 0
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._writer: asyncio.Task[None] | None = None
        self._subscribers: set[WorldSubscription] = set()
        self._failed: str = ""
        self.compactions = 0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        replayed = await asyncio.to_thread(self._journal.replay)
        self._entries = {k: Entry(k, v, ver) for k, (ver, v) in replayed.entries.items()}
        self._seq = replayed.seq
        self._records = replayed.records
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
        return {"mode": "local", "keys": len(self._entries), "version": self._seq,
                "subscribers": len(self._subscribers), "error": self._failed or None}

    # ------------------------------------------------------------ WorldModel

    @property
    def version(self) -> int:
        return self._seq

    async def get(self, key: str) -> Entry | None:
        return self._entries.get(check_key(key))

    async def items(self) -> list[Entry]:
        return sorted(self._entries.values(), key=lambda e: e.key)

    async def set(self, key: str, value: Any, expected_version: int | None = None) -> Entry:
        check_key(key)
        text = encode_value(value, self.max_value_bytes)
        self._check_version(key, expected_version)
        self._seq += 1
        # Store a private copy so callers mutating their object cannot change the state.
        entry = Entry(key, json.loads(text), self._seq)
        self._entries[key] = entry
        await self._commit(encode_record(entry.version, "set", key, text))
        self._publish(Change("set", key, entry.value, entry.version))
        return entry

    async def delete(self, key: str, expected_version: int | None = None) -> int:
        check_key(key)
        if key not in self._entries:
            raise NotFound(f"no key {key!r}")
        self._check_version(key, expected_version)
        self._seq += 1
        version = self._seq
        del self._entries[key]
        await self._commit(encode_record(version, "delete", key, None))
        self._publish(Change("delete", key, None, version))
        return version

    def subscribe(self) -> WorldSubscription:
        return WorldSubscription(self._subscribers)

    # ------------------------------------------------------------ internals

    def _check_version(self, key: str, expected: int | None) -> None:
        if self._failed:
            raise WorldError(f"the world journal failed: {self._failed}")
        if expected is None:
            return
        current = self._entries.get(key)
        actual = current.version if current else 0
        if actual != expected:
            raise VersionConflict(key, expected, actual)

    async def _commit(self, line: bytes) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((line, fut))
        self._wake.set()
        await fut

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
                await asyncio.to_thread(self._journal.append, [line for line, _ in batch])
            except OSError as exc:
                self._failed = str(exc)
                log.error("world journal write failed: %s", exc)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(WorldError(f"the write was not made durable: {exc}"))
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)
            self._records += len(batch)
            if self._records >= self.compact_after:
                await self._compact()

    async def _compact(self) -> None:
        snapshot = {k: (e.version, e.value) for k, e in self._entries.items()}
        seq = self._seq
        try:
            await asyncio.to_thread(self._journal.compact, snapshot, seq)
        except OSError as exc:
            log.error("world snapshot failed (the journal keeps growing): %s", exc)
            return
        self._records = 0
        self.compactions += 1
        log.info("world model: snapshot at version %d (%d keys)", seq, len(snapshot))
