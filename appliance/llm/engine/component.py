"""The in-process LLM as a Component and an LLMClient: load, warm up, admit, stream.

Admission: ``slots`` sequences decode together, ``queue`` more may wait; beyond
that :class:`LLMBusy` (503 + Retry-After). A prompt that does not fit the context
raises :class:`PromptTooLong` (400) before anything is generated. Loading,
templating and tokenizing run in threads; decoding in the scheduler's worker.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any

from appliance.llm import grammar
from appliance.llm.chat import (
    ChatChunk,
    ChatRequest,
    LLMBusy,
    LLMError,
    UnknownModel,
)
from appliance.llm.engine.model import Model, set_wait_policy
from appliance.llm.engine.prepare import prepare
from appliance.llm.engine.scheduler import Scheduler
from appliance.llm.engine.sequence import Prepared, Sequence
from appliance.llm.engine.settings import EngineSettings
from appliance.llm.engine.stats import EngineStats
from appliance.llm.engine.warmup import Attempt, WarmupRecord
from appliance.node import Component

log = logging.getLogger(__name__)

LOAD_TIMEOUT_S = 120.0
STOP_JOIN_TIMEOUT_S = 10.0
# Retry-After given with a 503 when every slot and the queue are taken.
BUSY_RETRY_AFTER_S = 2.0
MAX_EMBED_INPUTS = 256


class WarmupCrashed(LLMError):
    """The last start crashed inside llama.cpp with the same model, build and settings."""

    code = "warmup_crashed"
    #: The daemon's exit status: the unit does not restart it (RestartPreventExitStatus).
    exit_status = 3


class Engine(Component):
    """The local model as a Component and an LLMClient (``name`` "local")."""

    name = "llm"
    start_timeout_s = LOAD_TIMEOUT_S

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.client_name = "local"
        self.stats = EngineStats()
        self.weight_repack = ""  # the decision, in words, once loaded
        self.wait_policy = ""
        self._model: Model | None = None
        self._scheduler: Scheduler | None = None
        self._admitted = 0  # sequences submitted and not yet finished; loop-side count
        self._record = WarmupRecord(settings.state_dir)

    # LLMClient's name is "local"; Component's name is "llm". A property keeps both.
    @property
    def served_name(self) -> str:
        return self.client_name

    # ------------------------------------------------------------ Component

    async def start(self) -> None:
        self.settings.require_model()
        # Before the first llama_cpp import, which loads libgomp and reads it.
        self.wait_policy = set_wait_policy(self.settings.wait_policy)
        model = await asyncio.to_thread(self._load)
        scheduler = Scheduler(model, self.settings.slots, self.stats)
        try:  # the warm-up on the engine's own thread (see Scheduler.start)
            await asyncio.wrap_future(scheduler.start(model.warm_up))
        except BaseException:
            await asyncio.to_thread(scheduler.stop, STOP_JOIN_TIMEOUT_S)
            await asyncio.to_thread(model.free)
            raise
        finally:
            self._record.end()  # no crash: a Python error is nothing to remember
        self._model, self._scheduler = model, scheduler
        log.info("llm: %s loaded and warmed up (%d ctx, %d slots, %d threads; weight "
                 "repacking %s; OpenMP waiting %s)", self.settings.model_id,
                 self._model.n_ctx, self.settings.slots, self.settings.threads,
                 self.weight_repack, self.wait_policy)

    async def stop(self) -> None:
        if self._scheduler is not None:
            await asyncio.to_thread(self._scheduler.stop, STOP_JOIN_TIMEOUT_S)
            self._scheduler = None
        if self._model is not None:
            await asyncio.to_thread(self._model.free)
            self._model = None

    def healthy(self) -> bool:
        return self._scheduler is None or self._scheduler.alive()

    def describe(self) -> dict[str, Any]:
        model, sched = self._model, self._scheduler
        return {"model": self.settings.model_id, "context": model.n_ctx if model else 0,
                "weight_repack": self.weight_repack, "wait_policy": self.wait_policy,
                "slots": self.settings.slots, "queue": self.settings.queue,
                "active": sched.active if sched else 0, "admitted": self._admitted,
                "embeddings": bool(model and model.embed_ctx is not None),
                **({"placement": model.placement} if model and model.placement else {}),
                **self.stats.snapshot()}

    def status_fragment(self) -> str:
        active = self._scheduler.active if self._scheduler else 0
        return f"llm {self.settings.model_id} {active}/{self.settings.slots} slots"

    def metrics(self) -> Iterable[Any]:
        sched = self._scheduler
        return self.stats.families(self.settings.model_id, sched.active if sched else 0,
                                   self.settings.slots, sched.queued if sched else 0)

    # ------------------------------------------------------------ LLMClient

    def model_ids(self) -> list[str]:
        return [self.settings.model_id]

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Generate the answer; LLMError before the first chunk when it cannot start."""
        model, sched = self._ready()
        self._check_model(request.model)
        limit = self.settings.slots + self.settings.queue
        if self._admitted >= limit:
            self.stats.add("busy")
            raise LLMBusy(f"all {self.settings.slots} slots and the queue of "
                          f"{self.settings.queue} are taken", BUSY_RETRY_AFTER_S)
        self._admitted += 1
        seq: Sequence | None = None
        try:
            try:
                prep = await asyncio.to_thread(prepare, model, self.settings, request)
            except LLMError:
                self.stats.add("invalid")
                raise
            seq = Sequence(prep, asyncio.get_running_loop())
            self.stats.add("requests")
            sched.submit(seq)
            after: tuple[str, Any] | None = None
            while True:
                kind, value = after or await seq.events.get()
                after = None
                if kind == "text":
                    text, logprobs = value
                    # Pieces handed over together go out as one chunk (one SSE event).
                    while logprobs is None and not seq.events.empty():
                        after = seq.events.get_nowait()
                        if after[0] != "text":
                            break
                        text += after[1][0]
                        after = None
                    yield ChatChunk(content=text, served_by=self.client_name,
                                    logprobs=logprobs)
                elif kind == "end":
                    # Counted before the last yield: a caller that stops reading once it
                    # has the finish chunk closes this generator at that yield.
                    self.stats.add("completed")
                    yield self._final_chunk(prep, *value)
                    return
                else:
                    self.stats.add("error")
                    raise value
        finally:
            self._admitted -= 1
            if seq is not None and not seq.finished:
                seq.cancelled = True
                self.stats.add("cancelled")
                sched.wake()

    async def embed(self, texts: list[str], model: str) -> tuple[list[list[float]], int]:
        """Unit-length mean-pooled vectors of ``texts`` and the tokens they took."""
        loaded, sched = self._ready()
        self._check_model(model)
        if loaded.embed_ctx is None:
            raise LLMError("embeddings are off on this node (llm.embeddings is false)")
        if not texts or len(texts) > MAX_EMBED_INPUTS:
            raise LLMError(f"input must hold 1-{MAX_EMBED_INPUTS} texts", param="input")
        size = sum(len(t.encode()) for t in texts)
        if size > self.settings.max_prompt_bytes:
            raise LLMError(f"the input is {size} bytes; at most "
                           f"{self.settings.max_prompt_bytes} are accepted", param="input")
        tokens = await asyncio.to_thread(lambda: [loaded.tokenize(t) for t in texts])
        vectors = await asyncio.wrap_future(sched.run_job(lambda: loaded.embed(tokens)))
        self.stats.add("embeddings", len(texts))
        return vectors, sum(len(t) for t in tokens)

    # ------------------------------------------------------------ helpers

    def _ready(self) -> tuple[Model, Scheduler]:
        if self._model is None or self._scheduler is None or not self._scheduler.alive():
            raise LLMError("the local model is not loaded")
        return self._model, self._scheduler

    def _check_model(self, name: str) -> None:
        if name not in ("default", self.settings.model_id):
            raise UnknownModel(f"model {name[:128]!r} is not served here; "
                               f"try {self.settings.model_id!r} or 'default'", param="model")

    def _load(self) -> Model:
        """Load (a worker thread) under the warm-up record, which start() ends after the
        warm-up; see warmup.py."""
        from appliance.llm import cpu

        s = self.settings
        info = cpu.system_info()
        repack, self.weight_repack = cpu.resolve_weight_repack(
            s.weight_repack, info, cpu.cpu_flags())
        build = cpu.build_id(info)
        attempt = Attempt(model=str(s.model_path), repack=repack, build=build)
        crashed = self._record.crashed(attempt)
        if crashed is not None:
            if crashed.repack and s.weight_repack == "auto":
                repack = False
                self.weight_repack = ("off: the last start crashed in llama.cpp while warming "
                                      "up with repacking on")
                log.warning("llm: %s; trying again with weight repacking off "
                            "(set llm.weight_repack: off to say so)", self.weight_repack)
            elif crashed.repack == repack:
                state = "on" if repack else "off"
                raise WarmupCrashed(
                    f"the last start crashed inside llama.cpp while loading and warming up "
                    f"{s.model_path.name} (weight repacking {state}, {build}); it would crash "
                    "again. The crash is in `journalctl -u hybrid-agent`. Try "
                    "llm.weight_repack: off, another llm.model, or llama-cpp-python built "
                    "for this CPU; after 10 minutes the next start tries again.")
        attempt = replace(attempt, repack=repack)
        self._record.begin(attempt)
        log.info("llm: loading and warming up %s (weight repacking %s); a crash here is "
                 "recorded for the next start", s.model_path.name, "on" if repack else "off")
        try:
            return Model(s, repack)  # warmed up by start(), on the engine's thread
        except BaseException:
            self._record.end()  # a Python error, not a crash: nothing to remember
            raise

    def _final_chunk(self, prep: Prepared, finish: str, usage: dict[str, Any], text: str,
                     logprobs: list[dict[str, Any]] | None) -> ChatChunk:
        mode = prep.constraint.mode if prep.constraint else ""
        is_call = text.startswith(("{", "["))
        if mode in ("tools", "auto") and is_call and finish == "stop":
            try:
                calls = grammar.parse_tool_calls(text, lambda: "call_" + uuid.uuid4().hex[:24])
            except (ValueError, KeyError, TypeError):
                log.warning("a grammar-constrained tool call did not parse: %.200r", text)
            else:
                return ChatChunk(tool_calls=calls, finish_reason="tool_calls", usage=usage,
                                 served_by=self.client_name, logprobs=logprobs)
        if mode == "tools" or (mode == "auto" and is_call):
            # The grammar was cut short by max_tokens: say so instead of emitting broken JSON.
            return ChatChunk(content=text, finish_reason=finish, usage=usage,
                             served_by=self.client_name, logprobs=logprobs)
        return ChatChunk(finish_reason=finish, usage=usage, served_by=self.client_name,
                         logprobs=logprobs)
