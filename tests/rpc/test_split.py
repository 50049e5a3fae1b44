"""The split engine's decisions, against a real peer registry: who is lost, cut, blamed, used.

The whole engine, with its model host child and real workers, runs in
tests/lan/test_rpc_lan.py; here its choices are checked one by one, fast.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance import config
from appliance.llm.client import PeerFailed
from appliance.llm.engine.settings import EngineSettings
from appliance.llm.rpc import roster, split
from appliance.llm.rpc.link import NodeCertTrust
from appliance.llm.rpc.split import SplitEngine
from appliance.node import Component, Node
from appliance.security.nodetls import NodeTLS

KEY = bytes(range(32))
GIB = 1024**3


class FakeDiscovery(Component):
    """The registry of a discovery component that browses nothing (peers added by hand)."""

    name = "discovery"

    def __init__(self) -> None:
        from appliance.discovery.registry import PeerRegistry

        self.registry = PeerRegistry(own_id="core")


def _engine(tmp_path: Path, **llm: object) -> tuple[SplitEngine, FakeDiscovery]:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"x" * 4096)
    cfg = config.build({"node": {"state_dir": str(tmp_path)},
                        "llm": {"rpc_workers": ["mid-b", "mid-c"], **llm}})
    node = Node(cfg, "core")
    discovery = FakeDiscovery()
    node.add(discovery)
    engine = SplitEngine(EngineSettings(model_path=model, model_id="m"), cfg, node)
    engine.roster.trust = NodeCertTrust(NodeTLS.load(tmp_path / "tls", "c" * 32, KEY))
    return engine, discovery


def _worker_peer(discovery: FakeDiscovery, name: str, host: str = "10.0.0.2"):
    return discovery.registry.add_static(f"http://{host}:8700", {
        "id": f"id-{name}", "name": name, "roles": "rpc", "rpc": "8702", "mem": "2048"})


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(split, "CHECK_S", 0.05)
    monkeypatch.setattr(split, "LOST_GRACE_S", 0.3)


def _watching(tmp_path: Path):
    """An engine serving over mid-b (its model host never exits), and the watch on it."""
    engine, discovery = _engine(tmp_path)
    peer = _worker_peer(discovery, "mid-b")
    worker = engine.roster.worker(peer)
    exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    return engine, peer, worker, asyncio.ensure_future(engine._watch([worker], exited))


async def test_a_worker_in_use_that_loses_trust_is_cut_off_at_once(tmp_path, fast):
    engine, peer, worker, watch = _watching(tmp_path)
    await asyncio.sleep(0.1)
    assert not watch.done()
    peer.trusted = False  # revoked: no grace
    why = await asyncio.wait_for(watch, 1.0)
    assert why == "mid-b is no longer trusted"
    assert worker.state == "failed" and worker.retry_at > time.monotonic()
    assert engine.losses == 1


async def test_a_worker_that_turns_unhealthy_gets_a_grace_then_is_dropped(tmp_path, fast):
    _, peer, _, watch = _watching(tmp_path)
    peer.healthy = False
    await asyncio.sleep(0.15)
    assert not watch.done()  # a missed health probe is not yet a lost worker
    why = await asyncio.wait_for(watch, 2.0)
    assert why == "mid-b is no longer a healthy rpc worker"


async def test_when_the_host_dies_the_worker_whose_link_broke_is_blamed(tmp_path):
    engine, discovery = _engine(tmp_path)
    worker = engine.roster.worker(_worker_peer(discovery, "mid-b"))
    worker.end.traffic.ended_by_peer_at = time.monotonic()
    worker.end.traffic.last_end = "the worker closed"
    exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    exited.set_result(-6)
    why = await engine._blame([worker], exited, "while serving")
    assert why == ("lost mid-b while serving: the worker closed "
                   "(the model host killed by SIGABRT)")
    assert worker.state == "failed" and engine.losses == 1


async def test_shares_follow_tensor_split_or_free_memory(tmp_path, monkeypatch):
    engine, discovery = _engine(tmp_path, tensor_split=[2, 1, 3])
    c = engine.roster.worker(_worker_peer(discovery, "mid-c", "10.0.0.3"))
    assert engine.roster.shares_for([c]) == [2.0, 3.0]  # mid-b is not in use: its share goes too
    assert engine.roster.shares_for([]) == [1.0]
    engine, discovery = _engine(tmp_path)
    monkeypatch.setattr(roster, "available_memory", lambda: 4 * GIB)
    b = engine.roster.worker(_worker_peer(discovery, "mid-b"))
    b.mem_mb = 2048
    assert engine.roster.shares_for([b]) == [4096.0, 2048.0]


async def test_alone_only_after_the_wait_only_if_it_fits_and_only_if_allowed(
        tmp_path, monkeypatch):
    engine, _ = _engine(tmp_path)
    monkeypatch.setattr(split, "available_memory", lambda: 8 * GIB)
    engine._waiting_since = time.monotonic()
    assert not engine._fallback_allowed()  # workers may still be on their way
    engine._waiting_since -= split.WAIT_FOR_WORKERS_S
    assert engine._fallback_allowed()
    monkeypatch.setattr(split, "available_memory", lambda: 1024 * 1024)
    assert not engine._fallback_allowed()
    assert "needs about 256 MiB where this box has 1 MiB free" in engine.problem
    engine, _ = _engine(tmp_path, rpc_fallback="off")
    engine._waiting_since -= split.WAIT_FOR_WORKERS_S
    assert not engine._fallback_allowed()
    assert "llm.rpc_fallback is off" in engine.problem


async def test_while_not_served_a_request_fails_before_any_token_saying_why(tmp_path):
    engine, _ = _engine(tmp_path)
    engine.problem = "lost mid-b while serving"
    from appliance.llm.chat import ChatRequest

    with pytest.raises(PeerFailed, match="not served right now: lost mid-b while serving"):
        async for _ in engine.stream(ChatRequest(messages=[{"role": "user", "content": "hi"}])):
            pass
    assert engine.model_ids() == []
    assert "NOT SERVED: lost mid-b" in engine.status_fragment()


async def test_only_named_workers_are_candidates_in_the_configured_order(tmp_path):
    engine, discovery = _engine(tmp_path)
    _worker_peer(discovery, "stranger-box", "10.0.0.9")
    _worker_peer(discovery, "mid-c", "10.0.0.3")
    _worker_peer(discovery, "mid-b", "10.0.0.2")
    assert [p.name for p in engine.roster.candidates()] == ["mid-b", "mid-c"]
    engine.roster.names = None  # auto: every trusted rpc worker
    assert [p.name for p in engine.roster.candidates()] == ["mid-b", "mid-c", "stranger-box"]
