"""The "llm" component of a core that borrows memory: one model over this box and rpc workers.

With ``llm.rpc_workers`` set, the daemon's engine is this :class:`SplitEngine`.
It picks workers (``auto``: every trusted, healthy node with the ``rpc`` role;
else the named ones), asks each over the link whether its RPC server runs and
how much memory it lends, opens one loopback end of the link per worker
(appliance.llm.rpc.tunnel), and runs the model in the ``host`` child with the
last layers on the workers, in proportion to free memory (or
``llm.tensor_split``). Requests go to the child over loopback (an
OpenAI-compatible API guarded by a per-start token), so the router, the API and
the answers are those of the one-box engine.

Faults. A worker that dies makes ggml abort the child mid-step; a worker that
is no longer trusted (revoked) or healthy is cut off by stopping the child. Either
way the worker is named in STATUS= and ``/api/status``, is left alone for a
backoff, and the model is loaded again: over the remaining workers, else on this
box alone if it fits in free memory (``llm.rpc_fallback: auto``), else it is not
served: the node drops the ``llm`` role and answers 503 before any token, so
routers on other boxes fail over to another core. A wanted worker that comes
(back) is probed every few seconds; once it answers, the model is drained and
loaded again with it.

READY=1 does not wait for the split: its workers are other boxes, and a box does
not hold its own start hostage to the LAN; STATUS= says when the model is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from appliance.config import Config, to_dict
from appliance.errors import ApplianceError
from appliance.hardware import available_memory
from appliance.llm.chat import ChatChunk, ChatRequest, UnknownModel
from appliance.llm.client import PeerFailed, RemoteClient, Timeouts
from appliance.llm.engine.settings import EngineSettings
from appliance.llm.rpc import process
from appliance.llm.rpc.link import LinkTrust, prepare
from appliance.llm.rpc.tunnel import LinkError, LocalEnd
from appliance.net.http1 import Pool
from appliance.node import Component, Node
from appliance.tasks import cancel_and_wait

log = logging.getLogger(__name__)

WAIT_FOR_WORKERS_S = 10.0  # after the start or a loss, before loading on this box alone
CHECK_S = 1.0  # the running split against the registry
RECHECK_S = 5.0  # probing wanted workers not in use
RETRY_S = 2.0  # nothing to serve with: look again
LOST_GRACE_S = 3.0  # an unhealthy (not untrusted) worker may come back this soon
LOAD_TIMEOUT_S = 600.0
DRAIN_S = 30.0
CULPRIT_WINDOW_S = 10.0
BACKOFF_MIN_S = 2.0
BACKOFF_MAX_S = 60.0
FIT_FACTOR = 1.2  # the weights, plus a margin for the KV cache and compute buffers
FIT_RESERVE = 256 * 1024 * 1024
MIB = 1024 * 1024
MAX_REPLY_BYTES = 1024 * 1024
HOST_REQUESTS = 64


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


class SplitEngine(Component):
    """The model over this box and rpc workers, in a child: Component and LLMClient."""

    name = "llm"
    start_timeout_s = 30.0

    def __init__(self, settings: EngineSettings, config: Config, node: Node) -> None:
        self.settings = settings
        self.cfg = config.llm
        self._config = config
        self._node = node
        self.client_name = "local"
        self.names, self.shares = parse_workers(list(config.llm.rpc_workers),
                                                list(config.llm.tensor_split))
        self.serving = False
        self.mode = "starting"  # split | alone | none
        self.problem = ""
        self.placement: dict[str, Any] | None = None
        self.workers: dict[str, Worker] = {}
        self.reloads = 0
        self.losses = 0
        self.load_s = 0.0
        self.host_pid: int | None = None
        self._trust: LinkTrust | None = None
        self._client: RemoteClient | None = None
        self._pool: Pool | None = None
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._waiting_since = 0.0  # the start, or the last loss of a worker

    # ------------------------------------------------------------ Component

    async def start(self) -> None:
        self.settings.require_model()
        self._trust, why = await prepare(self._node, "llm.rpc_workers")
        if self._trust is None:
            self.problem = why
            log.error("llm: no rpc workers can be used: %s", why)
        self._waiting_since = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="llm-split")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None
        for worker in self.workers.values():
            await worker.end.stop()

    def healthy(self) -> bool:
        return self._task is None or not self._task.done()

    def describe(self) -> dict[str, Any]:
        return {"model": self.settings.model_id, "split": True, "mode": self.mode,
                "serving": self.serving, "problem": self.problem,
                "wanted": "auto" if self.names is None else list(self.names),
                "fallback": self.cfg.rpc_fallback, "placement": self.placement,
                "workers": [w.summary() for w in self.workers.values()],
                "trust": self._trust.description if self._trust else "",
                "reloads": self.reloads, "losses": self.losses, "load_s": self.load_s,
                "host_pid": self.host_pid, "active": self._inflight}

    def status_fragment(self) -> str:
        model = self.settings.model_id
        if self.serving and self.mode == "split" and self.placement:
            places = [f"{p['count']}{'+out' if p['output'] else ''} on "
                      f"{'this box' if p['where'] == 'local' else p['where']}"
                      for p in self.placement.get("places", [])]
            return f"llm {model} split: layers " + ", ".join(places)
        if self.serving:
            return f"llm {model} on this box alone" + (f" ({self.problem})"
                                                       if self.problem else "")
        return f"llm {model} NOT SERVED: {self.problem or self.mode}"

    # ------------------------------------------------------------ LLMClient

    def model_ids(self) -> list[str]:
        return [self.settings.model_id] if self.serving else []

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """The child's answer; PeerFailed (the router's "try another") while not served."""
        client = self._ready(request.model)
        self._begin()
        try:
            async for chunk in client.stream(request):
                yield chunk
        finally:
            self._end()

    async def embed(self, texts: list[str], model: str) -> tuple[list[list[float]], int]:
        client = self._ready(model)
        self._begin()
        try:
            return await client.embed(texts, model)
        finally:
            self._end()

    # ------------------------------------------------------------ supervision

    async def _supervise(self) -> None:
        while True:
            try:
                used = await self._usable()
                if used or self._fallback_allowed():
                    await self._run(used)
                    continue
            except LinkError as exc:  # a worker failed while being set up: choose again
                self.problem = str(exc)
                continue
            except (OSError, ValueError) as exc:
                self.problem = f"cannot start the model host: {exc}"
                log.error("llm: %s", self.problem)
            if not self.serving:
                self.mode = "none"
            await asyncio.sleep(RETRY_S)

    async def _usable(self) -> list[Worker]:
        """Wanted workers, probed over the link; those whose RPC server answers."""
        if self._trust is None:
            return []
        candidates = self._candidates()
        known = [self._worker(p) for p in candidates]
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
                self._failed(w, f"the link does not answer: {answer}")
            elif not answer.get("serving"):
                self._failed(w, "its RPC server is not running (restarting?)")
            elif answer.get("busy"):
                self._failed(w, "another core uses it")
            else:
                w.mem_mb = _int(answer.get("mem_mb"))
                w.state, w.problem = "ready", ""
                usable.append(w)
        return usable

    def _candidates(self) -> list[Any]:
        discovery = self._node.get("discovery")
        registry = getattr(discovery, "registry", None)
        peers = [p for p in (registry.select("rpc") if registry is not None else [])
                 if getattr(p, "rpc_port", 0)]
        if self.names is None:
            return sorted(peers, key=lambda p: (p.name, p.id))
        by_name = {p.name: p for p in peers}
        return [by_name[n] for n in self.names if n in by_name]

    def _worker(self, peer: Any) -> Worker:
        host = urlsplit(peer.url).hostname or ""
        w = self.workers.get(peer.name)
        if w is None or (w.id, w.host, w.port) != (peer.id, host, peer.rpc_port):
            assert self._trust is not None
            if w is not None:
                asyncio.get_running_loop().create_task(w.end.stop())
            w = Worker(name=peer.name, id=peer.id, host=host, port=peer.rpc_port,
                       end=LocalEnd(self._trust, peer.name, host, peer.rpc_port,
                                    client=(self._node.node_id, self._node.name),
                                    peer_id=peer.id))
            self.workers[peer.name] = w
        return w

    def _fallback_allowed(self) -> bool:
        # A worker's RPC server restarts in seconds: loading alone meanwhile costs two loads.
        if time.monotonic() - self._waiting_since < WAIT_FOR_WORKERS_S:
            self.problem = self.problem or "looking for rpc workers"
            return False
        if self.cfg.rpc_fallback == "off":
            self.problem = "no rpc worker is usable and llm.rpc_fallback is off"
            return False
        need = int(self.settings.model_path.stat().st_size * FIT_FACTOR) + FIT_RESERVE
        free = available_memory()
        if free < need:
            self.problem = (f"no rpc worker is usable, and the model needs about "
                            f"{need // MIB} MiB where this box has {free // MIB} MiB free")
            return False
        return True

    async def _run(self, used: list[Worker]) -> None:
        """Load over ``used`` (none: this box alone), serve until something changes."""
        for w in used:
            if w.end.local_port == 0:
                await w.end.start()
        shares = self._shares(used)
        token = secrets.token_urlsafe(32)
        args = [a for w in used for a in ("--worker", f"{w.name}={w.end.endpoint}")]
        args += [a for s in shares for a in ("--share", repr(s))] if used else []
        what = ("over this box and " + ", ".join(w.name for w in used)) if used \
            else "on this box alone"
        self.mode = "loading"
        self.problem = f"loading {what}"
        log.info("llm: loading %s %s (shares %s)", self.settings.model_id, what, shares)
        began = time.monotonic()
        proc = await process.spawn("appliance.llm.rpc.host", args,
                                   stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self.host_pid = proc.pid
        exited = asyncio.ensure_future(proc.wait())
        try:
            reply = await self._start_host(proc, token, exited)
            if reply is None:
                await self._blame(used, exited, "while loading")
                return
            self.load_s = round(time.monotonic() - began, 3)
            self._pool = Pool(limit=HOST_REQUESTS)
            self._client = RemoteClient(
                self.client_name, f"http://127.0.0.1:{reply['port']}", self._pool,
                timeouts=Timeouts(self.cfg.connect_timeout_s, self.cfg.first_token_timeout_s,
                                  self.cfg.idle_timeout_s),
                signer=lambda *_request, **_to: {"Authorization": f"Bearer {token}"},
                models=[self.settings.model_id])
            self.placement = reply.get("placement")
            for w in used:
                w.state, w.failures = "in use", 0
            self.mode = "split" if used else "alone"
            self.problem = "" if used else self._why_alone()
            self.serving = True
            self.reloads += 1
            log.info("llm: serving %s %s (loaded in %.1fs)", self.settings.model_id, what,
                     self.load_s)
            why = await self._watch(used, exited)
            log.warning("llm: %s; reloading", why)
        finally:
            self.serving = False
            await self._drain()
            self._client = None
            if self._pool is not None:
                await self._pool.close()
                self._pool = None
            await process.stop(proc)
            exited.cancel()
            self.host_pid = None
            self.placement = None
            for w in used:
                if w.state == "in use":
                    w.state = "ready"

    async def _start_host(self, proc: asyncio.subprocess.Process, token: str,
                          exited: asyncio.Future[int]) -> dict[str, Any] | None:
        assert proc.stdin is not None and proc.stdout is not None
        brief = {"token": token, "node_id": self._node.node_id, "source": self._config.source,
                 "config": to_dict(self._config)}
        with contextlib.suppress(OSError):
            proc.stdin.write(json.dumps(brief).encode())
            await proc.stdin.drain()
        proc.stdin.close()
        line = asyncio.ensure_future(proc.stdout.readline())
        waiting: set[asyncio.Future[Any]] = {line, exited}
        done, _ = await asyncio.wait(waiting, timeout=LOAD_TIMEOUT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        if line not in done:
            line.cancel()
            self.problem = ("the model host did not load the model within "
                            f"{LOAD_TIMEOUT_S:g}s" if not done else
                            f"the model host {process.exit_reason(proc.returncode)} "
                            "while loading")
            return None
        try:
            reply = json.loads(line.result()[:MAX_REPLY_BYTES] or b"{}")
        except ValueError:
            reply = {}
        if not isinstance(reply, dict) or not isinstance(reply.get("port"), int):
            error = reply.get("error") if isinstance(reply, dict) else None
            self.problem = f"the model host failed: {error or 'no answer'}"
            return None
        return reply

    async def _watch(self, used: list[Worker], exited: asyncio.Future[int]) -> str:
        """Wait until the split must change; why, in words."""
        since = time.monotonic()
        recheck = since + RECHECK_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), CHECK_S)
            if exited.done():
                return await self._blame(used, exited, "while serving")
            now = time.monotonic()
            for w in used:
                # An idle model host learns of a broken link only at its next request; the
                # worker's RPC server has dropped its buffers with the session anyway.
                if w.end.traffic.ended_by_peer_at > since:
                    self._lost(w, f"lost {w.name}: {w.end.traffic.last_end}")
                    return self.problem
            cands = {p.name: p for p in self._candidates()} if self._trust else {}
            for w in used:
                peer = cands.get(w.name)
                if peer is not None:
                    w.missing_since = 0.0
                    continue
                registered = self._registered(w.name)
                revoked = registered is not None and not registered.trusted
                w.missing_since = w.missing_since or now
                if revoked or now - w.missing_since >= LOST_GRACE_S:
                    why = ("is no longer trusted" if revoked else
                           "is no longer a healthy rpc worker")
                    self._lost(w, f"{w.name} {why}")
                    return self.problem
            if now >= recheck:
                recheck = now + RECHECK_S
                missing = [p for name, p in cands.items()
                           if name not in {w.name for w in used}]
                back = await self._probe_new(missing)
                if back:
                    self.problem = f"{', '.join(back)} can take layers: reloading"
                    return self.problem

    async def _probe_new(self, peers: list[Any]) -> list[str]:
        now = time.monotonic()
        fresh = [self._worker(p) for p in peers]
        fresh = [w for w in fresh if w.retry_at <= now]
        results = await asyncio.gather(*(w.end.probe() for w in fresh), return_exceptions=True)
        out = []
        for w, answer in zip(fresh, results, strict=True):
            if isinstance(answer, dict) and answer.get("serving") and not answer.get("busy"):
                out.append(w.name)
            elif isinstance(answer, BaseException):
                self._failed(w, f"the link does not answer: {answer}")
        return out

    async def _blame(self, used: list[Worker], exited: asyncio.Future[int], when: str) -> str:
        """The host ended (or failed to load): name the worker whose link broke, if any."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited), 5.0)
        end = process.exit_reason(exited.result() if exited.done() else None)
        now = time.monotonic()
        culprits = [w for w in used if w.end.traffic.ended_by_peer_at
                    and now - w.end.traffic.ended_by_peer_at <= CULPRIT_WINDOW_S]
        if culprits:
            for w in culprits:
                self._lost(w, f"lost {w.name} {when}: {w.end.traffic.last_end}")
            self.problem += f" (the model host {end})"
        elif not self.problem or not self.problem.startswith("the model host"):
            self.problem = f"the model host {end} {when}"
        log.warning("llm: %s", self.problem)
        return self.problem

    def _lost(self, w: Worker, problem: str) -> None:
        self.losses += 1
        self.problem = problem
        self._waiting_since = time.monotonic()
        self._failed(w, problem)

    def _failed(self, w: Worker, problem: str) -> None:
        w.failures += 1
        w.state, w.problem = "failed", problem[:300]
        w.retry_at = time.monotonic() + min(BACKOFF_MAX_S,
                                            BACKOFF_MIN_S * 2 ** min(w.failures - 1, 6))

    def _registered(self, name: str) -> Any:
        registry = getattr(self._node.get("discovery"), "registry", None)
        if registry is None:
            return None
        return next((p for p in registry.peers() if p.name == name), None)

    def _shares(self, used: list[Worker]) -> list[float]:
        if not used:
            return [1.0]
        if self.shares and self.names is not None:
            by_name = dict(zip(self.names, self.shares[1:], strict=True))
            return [self.shares[0], *(by_name[w.name] for w in used)]
        return [float(available_memory() // MIB), *(float(max(w.mem_mb, 1)) for w in used)]

    def _why_alone(self) -> str:
        reasons = [w.problem or f"{w.name}: {w.state}" for w in self.workers.values()
                   if w.state not in ("ready", "in use")]
        return "; ".join(reasons) if reasons else "no rpc worker is usable"

    async def _drain(self) -> None:
        if self._inflight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), DRAIN_S)

    def _ready(self, model: str) -> RemoteClient:
        client = self._client
        if not self.serving or client is None:
            raise PeerFailed(f"the split model {self.settings.model_id} is not served right "
                             f"now: {self.problem or self.mode}")
        if model not in ("default", self.settings.model_id):
            raise UnknownModel(f"model {model[:128]!r} is not served here; "
                               f"try {self.settings.model_id!r} or 'default'", param="model")
        return client

    def _begin(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def _end(self) -> None:
        self._inflight -= 1
        if self._inflight <= 0:
            self._inflight = 0
            self._idle.set()


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
