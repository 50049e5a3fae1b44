"""Issue 15, items 6 and 7: world writes visible only once durable, a failed write (a really
full disk) leaves no trace, and one damaged journal record no longer stops the node."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.world import journal as journal_module
from appliance.world.journal import JOURNAL_FILE
from appliance.world.store import LocalWorld

FSYNC_WAIT_S = 60.0
PAD = "x" * 2000


async def test_a_write_is_invisible_until_its_fsync_returns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Red team: a write was visible to readers before its fsync."""
    world = LocalWorld(tmp_path)
    await world.start()
    first = await world.set("door", "closed")
    entered, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def held_fsync(fd: int) -> None:
        entered.set()
        release.wait(FSYNC_WAIT_S)
        real_fsync(fd)

    monkeypatch.setattr(journal_module.os, "fsync", held_fsync)
    sub = world.subscribe()
    write = asyncio.ensure_future(world.set("door", "open"))
    assert await asyncio.to_thread(entered.wait, FSYNC_WAIT_S)
    # Written to the file, not yet durable: nobody sees it.
    assert (await world.get("door")).value == "closed"  # type: ignore[union-attr]
    assert [e.value for e in await world.items()] == ["closed"]
    assert world.version == first.version
    # A compare-and-set already counts it, so two writers cannot both win.
    with pytest.raises(Exception, match="version"):
        await world.set("door", "ajar", expected_version=first.version)
    release.set()
    entry = await write
    assert (await world.get("door")).value == "open"  # type: ignore[union-attr]
    assert world.version == entry.version
    change = await asyncio.wait_for(sub.__aiter__().__anext__(), 5)
    assert change.value == "open"
    monkeypatch.undo()
    await world.stop()


async def test_a_write_on_a_full_disk_leaves_no_trace_and_writing_resumes(
        tmpfs: Callable[[str], Path], daemon_factory: Callable[..., Any]) -> None:
    """Red team: on a full disk a PUT answered 500 "not made durable", yet GET returned the
    value and the listing had it until a restart, after which it was gone."""
    disk = tmpfs("2m")
    d = await daemon_factory(node={"state_dir": str(disk / "state")}, world={"mode": "local"})
    # Something else fills the disk, all but about 100 kB.
    ballast = disk / "ballast"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    ballast.write_bytes(b"\0" * (free - 100 * 1024))
    acked: dict[str, int] = {}
    refused = None
    async with aiohttp.ClientSession() as s:
        for i in range(1000):
            async with s.put(f"{d.url}/api/world/k{i}", json={"i": i, "pad": PAD}) as r:
                body = await r.json()
                if r.status != 200:
                    refused = (i, r.status, body)
                    break
                acked[f"k{i}"] = body["version"]
        assert refused is not None, "the tmpfs never filled"
        i, status, body = refused
        assert status == 507 and body["error"]["code"] == "insufficient_storage", body
        assert "disk is full" in body["error"]["message"]
        async with s.get(f"{d.url}/api/world/k{i}") as r:
            assert r.status == 404  # no trace
        async with s.get(f"{d.url}/api/world") as r:
            listing = await r.json()
        assert {e["key"] for e in listing["entries"]} == set(acked)
        assert listing["version"] == max(acked.values())
        # Readiness: the node serves; the status says why writes fail.
        _, status_body = await d.get_json("/api/status")
        assert "world writes failing (the disk is full)" in status_body["status"]
        code, health = await d.get_json("/health")
        assert code == 200 and health["ready"] and health["unhealthy"] == []
        # Room again: writing resumes, at the version after the last durable one.
        ballast.unlink()
        async with s.put(f"{d.url}/api/world/k{i}", json={"i": i, "pad": PAD}) as r:
            assert r.status == 200, await r.text()
            acked[f"k{i}"] = (await r.json())["version"]
        assert acked[f"k{i}"] == max(listing["version"], 0) + 1
        _, status_body = await d.get_json("/api/status")
        assert "world writes failing" not in status_body["status"]
    await d.stop()
    again = await daemon_factory(node={"state_dir": str(disk / "state")},
                                 world={"mode": "local"})
    _, state = await again.get_json("/api/world")
    assert {e["key"]: e["version"] for e in state["entries"]} == acked
    assert "Traceback" not in d.log()


async def test_a_flipped_bit_in_the_journal_is_set_aside_and_the_node_starts(
        daemon_factory: Callable[..., Any], tmp_path: Path) -> None:
    """Red team: one flipped bit in the first record: exit 1 "damaged record at byte 0
    followed by more records", and voice and chat went down with it."""
    state = tmp_path / "state"
    world_cfg = {"mode": "local", "compact_after": 10}
    d = await daemon_factory(node={"state_dir": str(state)}, world=world_cfg)
    async with aiohttp.ClientSession() as s:
        for i in range(15):  # a snapshot after ten, five records in the journal
            async with s.put(f"{d.url}/api/world/k{i}", json=i) as r:
                assert r.status == 200
    await d.stop()
    journal = state / "world" / JOURNAL_FILE
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) == 5
    damaged = bytearray(lines[1])
    damaged[20] ^= 0x04  # one bit, inside the second record
    journal.write_bytes(lines[0] + bytes(damaged) + b"".join(lines[2:]))

    again = await daemon_factory(node={"state_dir": str(state)}, world=world_cfg)
    _, listing = await again.get_json("/api/world")
    # The snapshot and the record before the damage are served; the rest is set aside.
    assert sorted(e["key"] for e in listing["entries"]) == sorted(f"k{i}" for i in range(11))
    _, status = await again.get_json("/api/status")
    world = status["components"]["world"]
    (aside,) = world["set_aside"]
    assert Path(aside["path"]).read_bytes() == bytes(damaged) + b"".join(lines[2:])
    assert "3 record(s) after it" in aside["what"]
    assert "WORLD JOURNAL DAMAGE SET ASIDE" in status["status"]
    assert any("WORLD JOURNAL DAMAGE SET ASIDE" in line for line in again.notify.lines())
    # The rest of the node works: chat is answered (no LLM here, but not a 5xx of the world).
    async with aiohttp.ClientSession() as s, s.post(f"{again.url}/api/chat",
                                                    json={"text": "hello"}) as r:
        assert r.status == 200
        await r.read()
    async with aiohttp.ClientSession() as s, s.put(f"{again.url}/api/world/k11", json=11) as r:
        assert r.status == 200
    # And the doctor says so, with the way to recover.
    doctor = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "appliance.cli", "doctor", "--json", "--config",
                         str(again.config_path)], capture_output=True, text=True, timeout=120,
        check=False)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["world"]["level"] == "WARN", checks["world"]
    assert Path(aside["path"]).name in checks["world"]["message"]
    assert "docs/operations.md" in checks["world"]["fix"]
