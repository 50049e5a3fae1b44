"""The local world model: versions, compare-and-set, change feed, journal replay and torn tails."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path

import pytest

from appliance.world import journal as journal_module
from appliance.world.journal import JOURNAL_FILE, SNAPSHOT_FILE
from appliance.world.model import InvalidKey, NotFound, ValueTooLarge, VersionConflict
from appliance.world.store import LocalWorld


async def open_world(path: Path, **kw: int) -> LocalWorld:
    world = LocalWorld(path, **kw)
    await world.start()
    return world


async def test_set_get_delete_and_versions(tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    a = await world.set("kitchen.light", "on")
    b = await world.set("kitchen.light", {"state": "off", "level": 3})
    assert (a.version, b.version) == (1, 2)
    got = await world.get("kitchen.light")
    assert got is not None and got.value == {"state": "off", "level": 3} and got.version == 2
    assert await world.delete("kitchen.light") == 3
    assert await world.get("kitchen.light") is None
    with pytest.raises(NotFound):
        await world.delete("kitchen.light")
    await world.stop()


async def test_compare_and_set_rejects_a_stale_version(tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    first = await world.set("door", "closed", expected_version=0)  # create-only
    with pytest.raises(VersionConflict) as info:
        await world.set("door", "open", expected_version=0)
    assert info.value.actual == first.version
    second = await world.set("door", "open", expected_version=first.version)
    with pytest.raises(VersionConflict):
        await world.set("door", "ajar", expected_version=first.version)  # stale now
    with pytest.raises(VersionConflict):
        await world.delete("door", expected_version=first.version)
    assert (await world.get("door")).value == "open"  # type: ignore[union-attr]
    assert await world.delete("door", expected_version=second.version) > second.version
    await world.stop()


async def test_bad_keys_and_oversized_values_are_refused(tmp_path: Path) -> None:
    world = await open_world(tmp_path, max_value_bytes=64)
    for bad in ("", "has space", "a/b", "x" * 129, "ü"):
        with pytest.raises(InvalidKey):
            await world.set(bad, 1)
    with pytest.raises(ValueTooLarge):
        await world.set("big", "x" * 100)
    assert await world.items() == []
    await world.stop()


async def test_subscribers_hear_each_durable_change(tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    sub = world.subscribe()
    got: list[tuple[str, str, int]] = []

    async def collect() -> None:
        async for change in sub:
            got.append((change.op, change.key, change.version))
            if len(got) == 3:
                return

    task = asyncio.create_task(collect())
    await world.set("a", 1)
    await world.set("b", 2)
    await world.delete("a")
    await asyncio.wait_for(task, 5)
    assert got == [("set", "a", 1), ("set", "b", 2), ("delete", "a", 3)]
    sub.close()
    await world.stop()


async def test_state_survives_a_restart_and_a_compaction(tmp_path: Path) -> None:
    world = await open_world(tmp_path, compact_after=10)
    for i in range(25):
        await world.set(f"k{i % 7}", i)
    await world.delete("k0")
    assert world.compactions >= 2
    before = {e.key: (e.value, e.version) for e in await world.items()}
    await world.stop()
    assert (tmp_path / SNAPSHOT_FILE).exists()
    again = await open_world(tmp_path, compact_after=10)
    assert {e.key: (e.value, e.version) for e in await again.items()} == before
    assert (await again.set("new", True)).version == 27  # versions keep growing
    await again.stop()


async def test_a_torn_last_record_is_dropped_and_earlier_data_kept(tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    for i in range(5):
        await world.set(f"k{i}", {"i": i})
    await world.stop()
    journal = tmp_path / JOURNAL_FILE
    whole = journal.read_bytes()
    # A crash in the middle of the sixth record: half a line, no newline.
    journal.write_bytes(whole + b'5b0c7a1e {"s":6,"op":"set","k":"k5","v":{"i"')
    world = await open_world(tmp_path)
    assert {e.key: e.value["i"] for e in await world.items()} == {f"k{i}": i for i in range(5)}
    assert journal.read_bytes() == whole  # cut back to the last good record
    assert (await world.set("k5", 5)).version == 6
    await world.stop()
    world = await open_world(tmp_path)
    assert len(await world.items()) == 6
    await world.stop()


async def test_a_complete_last_line_with_a_bad_checksum_is_a_torn_tail(tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    await world.set("a", 1)
    await world.set("b", 2)
    await world.stop()
    journal = tmp_path / JOURNAL_FILE
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + lines[1].replace(b'"v":2', b'"v":9'))
    world = await open_world(tmp_path)
    assert [(e.key, e.value) for e in await world.items()] == [("a", 1)]
    await world.stop()


async def test_damage_before_the_last_record_is_set_aside_and_the_rest_served(
        tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    for i in range(3):
        await world.set(f"k{i}", i)
    await world.stop()
    journal = tmp_path / JOURNAL_FILE
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(lines[0] + b"garbage\n" + lines[2])
    world = await open_world(tmp_path)
    # The state before the damage; the damaged record and the one after it are set aside.
    assert [(e.key, e.value) for e in await world.items()] == [("k0", 0)]
    (aside,) = world.set_aside
    assert aside.path.read_bytes() == b"garbage\n" + lines[2]
    assert "byte " + str(len(lines[0])) in aside.what and "1 record(s) after it" in aside.what
    assert journal.read_bytes() == lines[0]
    assert "DAMAGE SET ASIDE" in world.status_fragment()
    assert world.describe()["set_aside"][0]["path"] == str(aside.path)
    assert (await world.set("k1", "again")).version == 2  # writes follow the good prefix
    await world.stop()


async def test_concurrent_writes_are_all_durable(tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    results = await asyncio.gather(*(world.set(f"key{i}", i) for i in range(300)))
    assert sorted(r.version for r in results) == list(range(1, 301))
    await world.stop()
    records = [json.loads(line[9:]) for line in (tmp_path / JOURNAL_FILE).read_bytes().splitlines()]
    assert len(records) == 300
    assert {r["k"]: r["v"] for r in records} == {f"key{i}": i for i in range(300)}


async def test_a_crash_between_snapshot_and_journal_truncation_replays_cleanly(
        tmp_path: Path) -> None:
    world = await open_world(tmp_path)
    for i in range(6):
        await world.set(f"k{i % 3}", i)
    await world.delete("k0")
    await world.stop()
    journal = tmp_path / JOURNAL_FILE
    old_records = journal.read_bytes()
    reopened = await open_world(tmp_path)
    before = {e.key: (e.value, e.version) for e in await reopened.items()}
    await reopened.stop()
    # Compact, then put the old records back: as if the crash came after the snapshot's
    # rename and before the journal was emptied. A half-written snapshot.tmp lies around too.
    world = await open_world(tmp_path, compact_after=1)
    await world.set("k9", 9)
    await world.stop()
    assert (tmp_path / SNAPSHOT_FILE).exists()
    journal.write_bytes(old_records)
    (tmp_path / "snapshot.tmp").write_bytes(b'{"seq": 99, "entr')
    world = await open_world(tmp_path)
    after = {e.key: (e.value, e.version) for e in await world.items()}
    assert after == {**before, "k9": (9, 8)}
    assert (await world.set("next", 1)).version == 9
    await world.stop()


FSYNC_WAIT_S = 60.0


async def test_a_write_is_acknowledged_only_after_its_fsync_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = await open_world(tmp_path)
    real_fsync = os.fsync
    entered, release = threading.Event(), threading.Event()
    order: list[str] = []

    def held_fsync(fd: int) -> None:
        """Wraps the real fsync: holds it until the test lets go."""
        order.append("fsync started")
        entered.set()
        release.wait(FSYNC_WAIT_S)
        real_fsync(fd)
        order.append("fsync returned")

    monkeypatch.setattr(journal_module.os, "fsync", held_fsync)
    for write in (world.set("door", "open"), world.delete("door")):
        entered.clear()
        release.clear()
        task = asyncio.ensure_future(write)
        assert await asyncio.to_thread(entered.wait, FSYNC_WAIT_S)
        # The record is written (flushed to the file) but its fsync has not returned.
        assert (tmp_path / JOURNAL_FILE).read_bytes().endswith(b"\n")
        # Let the loop run a full round trip through the thread pool and other calls.
        await asyncio.to_thread(lambda: None)
        await world.items()
        assert not task.done(), "the write was acknowledged before its fsync returned"
        release.set()
        await asyncio.wait_for(task, FSYNC_WAIT_S)
        order.append("acknowledged")
    assert order == ["fsync started", "fsync returned", "acknowledged"] * 2
    monkeypatch.undo()
    await world.stop()
