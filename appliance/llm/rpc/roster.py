"""The rpc workers a split model may use: which are wanted, which answer, and their shares.

``llm.rpc_workers`` names them (or ``auto``: every trusted, healthy node with the
``rpc`` role); the :class:`Roster` finds them in the discovery registry, gives
each a loopback end of the link (appliance.llm.rpc.tunnel, started once the split
uses it), asks each over it whether its RPC server runs and how much memory it
lends, and keeps a backoff per worker that failed. The split engine
(:class:`appliance.llm.rpc.split.SplitEngine`) loads the model over the workers the
roster finds usable.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from appliance.errors import ApplianceError
from appliance.hardware import available_memory
from appliance.llm.rpc.link import LinkTrust
from appliance.llm.rpc.tunnel import LocalEnd
from appliance.node import Node

BACKOFF_MIN_S = 2.0
BACKOFF_MAX_S = 60.0
MIB = 1024 * 1024


class SplitConfigError(ApplianceError, ValueError):
    """llm.rpc_workers / llm.tensor_split do not fit together (the message says how)."""


@dataclass
class Worker:
    """A worker this core knows of, and how it went."""

    name: str
    id: str
    host: str
    port: int
    end: LocalEnd
    mem_mb: int = 0
    state: str = "found"
    problem: str = ""
    retry_at: float = 0.0
    failures: int = 0
    missing_since: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "link": f"{self.host}:{self.port}", "state": self.state,
                "mem_mb": self.mem_mb, "problem": self.problem, "failures": self.failures,
                **self.end.traffic.snapshot()}


def parse_workers(workers: list[str], split: list[float]) -> tuple[list[str] | None, list[float]]:
    """``llm.rpc_workers`` and ``llm.tensor_split`` -> (names, or None for auto; shares)."""
    if "auto" in workers:
        if len(workers) > 1:
            raise SplitConfigError("llm.rpc_workers is either auto or a list of node names")
        if split:
            raise SplitConfigError("llm.tensor_split needs llm.rpc_workers to name the workers "
                                   "(its shares follow their order)")
        return None, []
    names = [w.strip() for w in workers]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise SplitConfigError("llm.rpc_workers: node names must be non-empty and distinct")
    if split:
        if len(split) != len(names) + 1:
            raise SplitConfigError(f"llm.tensor_split needs {len(names) + 1} shares (this box, "
                                   f"then each of llm.rpc_workers), found {len(split)}")
        if any(s < 0 for s in split) or sum(split[1:]) <= 0:
            raise SplitConfigError("llm.tensor_split: shares are >= 0 and some worker's is > 0")
    return names, list(split)


class Roster:
    """The workers of one split: the wanted ones the registry knows, each probed over the
    link, with its state and backoff."""

    def __init__(self, node: Node, names: list[str] | None, shares: list[float]) -> None:
        self._node = node
        self.names = names  # None: auto
        self.shares = shares  # llm.tensor_split: this box first, then each of names
        self.trust: LinkTrust | None = None  # None: no worker can be used
        self.workers: dict[str, Worker] = {}

    async def stop(self) -> None:
        for worker in self.workers.values():
            await worker.end.stop()

    async def usable(self) -> list[Worker]:
        """Wanted workers, probed over the link; those whose RPC server answers."""
        if self.trust is None:
            return []
        candidates = self.candidates()
        known = [self.worker(p) for p in candidates]
        if self.names is not None:
            found = {w.name for w in known}
            for name in self.names:
                if name not in found and name in self.workers:
                    self.workers[name].state = "not found (not a trusted, healthy rpc worker)"
        now = time.monotonic()
        due = [w for w in known if w.retry_at <= now]
        results = await asyncio.gather(*(w.end.probe() for w in due), return_exceptions=True)
        usable = []
        for w, answer in zip(due, results, strict=True):
            if isinstance(answer, BaseException):
                self.failed(w, f"the link does not answer: {answer}")
            elif not answer.get("serving"):
                self.failed(w, "its RPC server is not running (restarting?)")
            elif answer.get("busy"):
                self.failed(w, "another core uses it")
            else:
                w.mem_mb = _int(answer.get("mem_mb"))
                w.state, w.problem = "ready", ""
                usable.append(w)
        return usable

    def candidates(self) -> list[Any]:
        """The registry's rpc workers that are wanted: the named ones in their order, or all."""
        discovery = self._node.get("discovery")
        registry = getattr(discovery, "registry", None)
        peers = [p for p in (registry.select("rpc") if registry is not None else [])
                 if getattr(p, "rpc_port", 0)]
        if self.names is None:
            return sorted(peers, key=lambda p: (p.name, p.id))
        by_name = {p.name: p for p in peers}
        return [by_name[n] for n in self.names if n in by_name]

    def worker(self, peer: Any) -> Worker:
        """The Worker of ``peer``, with a new end of the link if it is new or has moved."""
        host = urlsplit(peer.url).hostname or ""
        w = self.workers.get(peer.name)
        if w is None or (w.id, w.host, w.port) != (peer.id, host, peer.rpc_port):
            assert self.trust is not None
            if w is not None:
                asyncio.get_running_loop().create_task(w.end.stop())
            w = Worker(name=peer.name, id=peer.id, host=host, port=peer.rpc_port,
                       end=LocalEnd(self.trust, peer.name, host, peer.rpc_port,
                                    client=(self._node.node_id, self._node.name),
                                    peer_id=peer.id))
            self.workers[peer.name] = w
        return w

    async def probe_new(self, peers: list[Any]) -> list[str]:
        """The names of ``peers`` (not in use, not backing off) that could take layers now."""
        now = time.monotonic()
        fresh = [self.worker(p) for p in peers]
        fresh = [w for w in fresh if w.retry_at <= now]
        results = await asyncio.gather(*(w.end.probe() for w in fresh), return_exceptions=True)
        out = []
        for w, answer in zip(fresh, results, strict=True):
            if isinstance(answer, dict) and answer.get("serving") and not answer.get("busy"):
                out.append(w.name)
            elif isinstance(answer, BaseException):
                self.failed(w, f"the link does not answer: {answer}")
        return out

    def failed(self, w: Worker, problem: str) -> None:
        """``w`` failed: left alone for a backoff that doubles with each failure."""
        w.failures += 1
        w.state, w.problem = "failed", problem[:300]
        w.retry_at = time.monotonic() + min(BACKOFF_MAX_S,
                                            BACKOFF_MIN_S * 2 ** min(w.failures - 1, 6))

    def registered(self, name: str) -> Any:
        """The registry's peer named ``name``, trusted or not, or None."""
        registry = getattr(self._node.get("discovery"), "registry", None)
        if registry is None:
            return None
        return next((p for p in registry.peers() if p.name == name), None)

    def shares_for(self, used: list[Worker]) -> list[float]:
        """The layer shares, this box first, then each of ``used``."""
        if not used:
            return [1.0]
        if self.shares and self.names is not None:
            by_name = dict(zip(self.names, self.shares[1:], strict=True))
            return [self.shares[0], *(by_name[w.name] for w in used)]
        return [float(available_memory() // MIB), *(float(max(w.mem_mb, 1)) for w in used)]

    def why_alone(self) -> str:
        """Why no worker is in use, in words."""
        reasons = [w.problem or f"{w.name}: {w.state}" for w in self.workers.values()
                   if w.state not in ("ready", "in use")]
        return "; ".join(reasons) if reasons else "no rpc worker is usable"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
