"""The worker thread: continuous batching over the slots of one llama context.

Every step decodes ONE batch that holds the next token of every generating
sequence plus prompt chunks of newly admitted ones (several ``seq_id`` s per
``llama_batch``), then samples each sequence with its own sampler. Sequences join
and leave between steps; a finished sequence's KV cells stay as a cache for the
next prompt with the same prefix. Embedding jobs run between steps, so the two
never compete for the CPU.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from appliance.llm.chat import LLMError
from appliance.llm.engine.model import BATCH_TOKENS, Model, put
from appliance.llm.engine.sampling import SequenceSampler
from appliance.llm.engine.sequence import Outbox, Sequence, common_prefix
from appliance.llm.engine.stats import EngineStats

log = logging.getLogger(__name__)


class Scheduler:
    """Owns the llama context once started; other threads only enqueue work."""

    def __init__(self, model: Model, slots: int, stats: EngineStats) -> None:
        self.model = model
        self.slots = slots
        self.stats = stats
        self.active = 0  # sequences holding a slot (read by other threads for display)
        self._cv = threading.Condition()
        self._incoming: deque[Sequence] = deque()
        self._jobs: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._running = False
        self._thread: threading.Thread | None = None
        self._outbox = Outbox()  # the worker's only

    # ------------------------------------------------------------ other threads

    def start(self, first: Callable[[], Any] | None = None) -> Future[Any]:
        """Start the worker thread; it runs ``first`` (the warm-up) before serving.

        Every llama.cpp decode of the model runs on this one thread, the warm-up too:
        libgomp keeps a pool of OpenMP threads per thread that starts parallel work, and
        with a second pool it counts more threads than CPUs and stops spinning between
        the steps of a decode (2.6x slower on 2 cores: docs/performance.md). The future
        holds ``first``'s result or exception; after an exception the thread has ended.
        """
        started: Future[Any] = Future()
        self._running = True
        self._thread = threading.Thread(target=self._run, args=(first, started),
                                        name="llm-engine", daemon=True)
        self._thread.start()
        return started

    def stop(self, timeout_s: float) -> None:
        with self._cv:
            self._running = False
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def queued(self) -> int:
        return len(self._incoming)

    def submit(self, seq: Sequence) -> None:
        with self._cv:
            self._incoming.append(seq)
            self._cv.notify()

    def wake(self) -> None:
        with self._cv:
            self._cv.notify()

    def run_job(self, job: Callable[[], Any]) -> Future[Any]:
        """Run ``job`` on the worker thread between two steps."""
        future: Future[Any] = Future()
        with self._cv:
            if not self._running:
                raise LLMError("the local model is not running")
            self._jobs.append((job, future))
            self._cv.notify()
        return future

    # ------------------------------------------------------------ the worker

    def _run(self, first: Callable[[], Any] | None, started: Future[Any]) -> None:
        try:
            result = first() if first is not None else None
        except BaseException as exc:  # the warm-up failed: nothing to serve
            self._running = False
            started.set_exception(exc)
            return
        started.set_result(result)
        self._serve()

    def _serve(self) -> None:
        import llama_cpp as lc

        ctx = self.model.ctx
        batch = lc.llama_batch_init(BATCH_TOKENS, 0, 1)
        mem = lc.llama_get_memory(ctx)
        free_ids = list(range(self.slots))
        # Tokens still in the KV cache of each free slot: a new prompt sharing their
        # prefix (the same conversation, the same system prompt) skips decoding it again.
        cached: dict[int, list[int]] = {}
        active: list[Sequence] = []
        try:
            while True:
                # The last steps' tokens and endings, in one hand-over (text may wait a
                # little for the next steps' while sequences are generating).
                self._outbox.flush(force=not active)
                with self._cv:
                    while self._running and not active and not self._incoming \
                            and not self._jobs:
                        self._cv.wait()
                    if not self._running:
                        break
                    jobs = list(self._jobs)
                    self._jobs.clear()
                    while self._incoming and free_ids:
                        seq = self._incoming.popleft()
                        if seq.cancelled:
                            continue
                        seq.outbox = self._outbox
                        self._assign_slot(seq, mem, free_ids, cached, active)
                        active.append(seq)
                self._run_jobs(jobs)
                self.active = len(active)
                for seq in [s for s in active if s.cancelled]:
                    self._release(seq, mem, free_ids, active, cached)
                for seq in [s for s in active if s.sampler is None]:
                    try:
                        seq.sampler = SequenceSampler(self.model, seq.prep)
                    except LLMError as exc:
                        seq.outcome = ("error", exc)
                        self._release(seq, mem, free_ids, active, cached)
                if not active:
                    continue
                in_batch = self._fill(batch, active)
                rc = lc.llama_decode(ctx, batch)
                if rc == 1:
                    for seq in in_batch:
                        seq.rewind()
                    if cached:
                        # The shared KV pool is full: drop the idle slots' caches first,
                        for sid in cached:
                            lc.llama_memory_seq_rm(mem, sid, -1, -1)
                        cached.clear()
                    else:
                        # then end the longest sequence with "length".
                        victim = max(active, key=lambda s: s.n_past)
                        self._finish(victim, "length")
                        self._release(victim, mem, free_ids, active)
                    continue
                if rc != 0:
                    for seq in list(active):
                        seq.outcome = ("error", LLMError(f"llama_decode failed ({rc})"))
                        self._release(seq, mem, free_ids, active)
                    continue
                self.stats.add("decode_calls")
                self.stats.peak("max_seqs_per_decode", len(in_batch))
                for seq in in_batch:
                    seq.commit()
                    if seq.logit_index >= 0:
                        self._sample(seq)
                        if seq.finished:
                            self._release(seq, mem, free_ids, active, cached)
                self.active = len(active)
        except Exception as exc:
            log.exception("llm worker crashed")
            for seq in active:
                seq.send("error", LLMError(f"the LLM engine failed: {exc}"))
        finally:
            self._outbox.flush()
            lc.llama_batch_free(batch)
            for seq in active:
                if seq.sampler is not None:
                    seq.sampler.free()
            self.active = 0
            with self._cv:
                for _, future in self._jobs:
                    future.set_exception(LLMError("the local model stopped"))
                self._jobs.clear()

    def _run_jobs(self, jobs: list[tuple[Callable[[], Any], Future[Any]]]) -> None:
        for job, future in jobs:
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(job())
            except BaseException as exc:
                future.set_exception(exc)

    def _fill(self, batch: Any, active: list[Sequence]) -> list[Sequence]:
        """Put every generating sequence's next token, then prompt chunks, into ``batch``."""
        n = 0
        in_batch = []
        generating = [s for s in active if s.prompt_done]
        prefilling = [s for s in active if not s.prompt_done]
        for seq in generating:
            seq.staged = 1
            seq.logit_index = n
            seq.staged_tokens = [seq.next_token]
            put(batch, n, seq.next_token, seq.n_past, seq.seq_id, True)
            n += 1
            in_batch.append(seq)
        for seq in prefilling:
            room = BATCH_TOKENS - n
            if room <= 0:
                break
            todo = seq.prep.tokens[seq.n_past:seq.n_past + room]
            last = seq.n_past + len(todo) == len(seq.prep.tokens)
            for i, tok in enumerate(todo):
                put(batch, n, tok, seq.n_past + i, seq.seq_id, last and i == len(todo) - 1)
                n += 1
            seq.staged = len(todo)
            seq.staged_tokens = todo
            seq.logit_index = n - 1 if last else -1
            in_batch.append(seq)
        batch.n_tokens = n
        return in_batch

    def _sample(self, seq: Sequence) -> None:
        tok = seq.sampler.sample(seq.logit_index)
        now = time.monotonic()
        if seq.generated == 0:
            seq.first_token_at = now
            self.stats.ttft.observe(now - seq.started)
        else:
            self.stats.tpot.observe(now - seq.last_token_at)
        seq.last_token_at = now
        if self.model.is_end(tok):
            self._finish(seq, "stop")
            return
        logprob = seq.sampler.logprob(seq.logit_index, tok) if seq.prep.logprobs >= 0 else None
        seq.generated += 1
        seq.next_token = tok
        seq.feed(self.model.piece(tok), logprob)
        if seq.stopped:
            self._finish(seq, "stop")
        elif seq.generated >= seq.prep.max_tokens or seq.n_past + 1 >= self.model.n_ctx:
            self._finish(seq, "length")

    def _finish(self, seq: Sequence, reason: str) -> None:
        logprobs = seq.flush()
        prompt = len(seq.prep.tokens)
        usage = {"prompt_tokens": prompt, "completion_tokens": seq.generated,
                 "total_tokens": prompt + seq.generated,
                 "prompt_tokens_details": {"cached_tokens": seq.cached}}
        self.stats.add("prompt_tokens", prompt)
        self.stats.add("completion_tokens", seq.generated)
        seq.finished = True
        # Sent by _release once the slot is free, so a caller that has its answer
        # never sees the engine still counting its sequence as active.
        seq.outcome = ("end", (reason, usage, seq.full_text, logprobs))

    def _assign_slot(self, seq: Sequence, mem: Any, free_ids: list[int],
                     cached: dict[int, list[int]], active: list[Sequence]) -> None:
        """Give ``seq`` a free slot and as much of its prompt as any slot's KV already holds.

        The KV pool is unified, so sharing a prefix with another slot (a free slot's
        cache, or a running sequence with the same system prompt) is a cheap
        ``seq_cp`` of cell ownership rather than decoding it again.
        """
        import llama_cpp as lc

        tokens = seq.prep.tokens
        sources: list[tuple[int, Any]] = [(sid, cached.get(sid, ())) for sid in free_ids]
        sources += [(s.seq_id, s.kv_tokens) for s in active]
        src, keep = -1, 0
        for sid, held in sources:
            common = common_prefix(held, tokens)
            if common > keep:
                src, keep = sid, common
        # At least one prompt token is decoded again: its logits give the first token.
        keep = min(keep, len(tokens) - 1)
        dst = src if src in free_ids else free_ids[0]
        free_ids.remove(dst)
        cached.pop(dst, None)
        if dst == src:
            lc.llama_memory_seq_rm(mem, dst, keep, -1)
        else:
            lc.llama_memory_seq_rm(mem, dst, -1, -1)
            if keep > 0:
                lc.llama_memory_seq_cp(mem, src, dst, 0, keep)
        seq.seq_id = dst
        seq.n_past = keep
        seq.cached = keep
        seq.kv_tokens = list(tokens[:keep])
        self.stats.add("cached_prompt_tokens", keep)

    def _release(self, seq: Sequence, mem: Any, free_ids: list[int],
                 active: list[Sequence], cached: dict[int, list[int]] | None = None) -> None:
        """Free ``seq``'s slot; with ``cached``, its KV stays for a prompt with the same prefix."""
        import llama_cpp as lc

        seq.finished = True
        if cached is not None:
            cached[seq.seq_id] = seq.kv_tokens
        else:
            lc.llama_memory_seq_rm(mem, seq.seq_id, -1, -1)
        if seq.sampler is not None:
            seq.sampler.free()
            seq.sampler = None
        active.remove(seq)
        free_ids.append(seq.seq_id)
        free_ids.sort()
        self.active = len(active)
        if seq.outcome is not None:
            seq.send(*seq.outcome)
