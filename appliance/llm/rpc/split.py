"""The "llm" component of a core that borrows memory: one model over this box and rpc workers.

With ``llm.rpc_workers`` set, the daemon's engine is this :class:`SplitEngine`.
Its :class:`~appliance.llm.rpc.roster.Roster` picks workers (``auto``: every
trusted, healthy node with the ``rpc`` role; else the named ones), asks each over
the link whether its RPC server runs and how much memory it lends, and opens one
loopback end of the link per worker (appliance.llm.rpc.tunnel); the engine runs
the model in the ``host`` child with the last layers on the workers, in
proportion to free memory (or ``llm.tensor_split``). Requests go to the child over loopback (an
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
from typing import Any

from appliance.config import Config, to_dict
from appliance.hardware import available_memory
from appliance.llm.chat import ChatChunk, ChatRequest, UnknownModel
from appliance.llm.client import PeerFailed, RemoteClient, Timeouts
from appliance.llm.engine.settings import EngineSettings
from appliance.llm.rpc import process
from appliance.llm.rpc.link import prepare
from appliance.llm.rpc.roster import MIB, Roster, Worker, parse_workers
from appliance.llm.rpc.tunnel import LinkError
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
FIT_FACTOR = 1.2  # the weights, plus a margin for the KV cache and compute buffers
FIT_RESERVE = 256 * 1024 * 1024
MAX_REPLY_BYTES = 1024 * 1024
HOST_REQUESTS = 64


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
        self.roster = Roster(node, *parse_workers(list(config.llm.rpc_workers),
                                                  list(config.llm.tensor_split)))
        self.serving = False
        self.mode = "starting"  # split | alone | none
        self.problem = ""
        self.placement: dict[str, Any] | None = None
        self.reloads = 0
        self.losses = 0
        self.load_s = 0.0
        self.host_pid: int | None = None
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
        self.roster.trust, why = await prepare(self._node, "llm.rpc_workers")
        if self.roster.trust is None:
            self.problem = why
            log.error("llm: no rpc workers can be used: %s", why)
        self._waiting_since = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="llm-split")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None
        await self.roster.stop()

    def healthy(self) -> bool:
        return self._task is None or not self._task.done()

    def describe(self) -> dict[str, Any]:
        return {"model": self.settings.model_id, "split": True, "mode": self.mode,
                "serving": self.serving, "problem": self.problem,
                "wanted": "auto" if self.roster.names is None else list(self.roster.names),
                "fallback": self.cfg.rpc_fallback, "placement": self.placement,
                "workers": [w.summary() for w in self.roster.workers.values()],
                "trust": self.roster.trust.description if self.roster.trust else "",
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
                used = await self.roster.usable()
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
        shares = self.roster.shares_for(used)
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
            self.problem = "" if used else self.roster.why_alone()
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
            cands = {p.name: p for p in self.roster.candidates()} if self.roster.trust else {}
            for w in used:
                peer = cands.get(w.name)
                if peer is not None:
                    w.missing_since = 0.0
                    continue
                registered = self.roster.registered(w.name)
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
                back = await self.roster.probe_new(missing)
                if back:
                    self.problem = f"{', '.join(back)} can take layers: reloading"
                    return self.problem

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
        self.roster.failed(w, problem)

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

