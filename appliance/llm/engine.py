"""The in-process LLM: llama.cpp through llama-cpp-python's low-level API, continuously batched.

One dedicated worker thread owns the llama context. Every step it decodes ONE
batch that holds the next token of every generating sequence plus prompt
chunks of newly admitted ones (several ``seq_id`` s per ``llama_batch``), then
samples each sequence with its own sampler chain. Sequences join and leave
between steps; a leaving sequence's KV cells are removed. Tokens travel back
to the event loop through one asyncio queue per request. Nothing here blocks
the event loop: loading, prompt templating and tokenizing run in threads.

Admission: ``slots`` sequences decode together, ``queue`` more may wait; beyond
that :class:`LLMBusy` (503 + Retry-After). A prompt that does not fit the
context raises :class:`PromptTooLong` (400) before anything is generated.
"""

from __future__ import annotations

import asyncio
import codecs
import ctypes
import itertools
import json
import logging
import math
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config import Config
from appliance.llm import grammar
from appliance.llm.chat import (
    ChatChunk,
    ChatRequest,
    InvalidRequest,
    LLMBusy,
    LLMError,
    PromptTooLong,
    UnknownModel,
)
from appliance.node import Component

log = logging.getLogger(__name__)
_ids = itertools.count(1)

LOAD_TIMEOUT_S = 120.0
STOP_JOIN_TIMEOUT_S = 10.0
# Tokens decoded per llama_decode call at most (prompt chunks share it with generation).
BATCH_TOKENS = 512
# Retry-After given with a 503 when every slot and the queue are taken.
BUSY_RETRY_AFTER_S = 2.0
MAX_STOP_STRINGS = 4
MAX_STOP_BYTES = 256
PIECE_BUF = 256


@dataclass(frozen=True)
class EngineSettings:
    """What the engine needs from the config."""

    model_path: Path
    model_id: str
    context: int = 4096
    threads: int = 2
    slots: int = 4
    queue: int = 16
    max_tokens: int = 512
    max_prompt_bytes: int = 256 * 1024
    weight_repack: str = "auto"
    """auto, on or off (see appliance/llm/cpu.py)."""

    @classmethod
    def from_config(cls, cfg: Config) -> EngineSettings:
        from appliance.models import llm_model_path

        path = llm_model_path(cfg)
        llm = cfg.llm
        return cls(model_path=path, model_id=path.stem, context=llm.context,
                   threads=llm.threads or _physical_cores(), slots=llm.slots, queue=llm.queue,
                   max_tokens=llm.max_tokens, max_prompt_bytes=llm.max_prompt_bytes,
                   weight_repack=llm.weight_repack)


class Engine(Component):
    """The local model as a Component and an LLMClient (``name`` "local")."""

    name = "llm"
    start_timeout_s = LOAD_TIMEOUT_S

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.client_name = "local"
        self._model: Any = None
        self._ctx: Any = None
        self._vocab: Any = None
        self._formatter: Any = None
        self._n_ctx = 0
        self._add_bos = False
        self.weight_repack = ""  # the decision, in words, once loaded
        self._pieces: dict[int, bytes] = {}
        self._candidates: Any = None  # the worker's reusable token-data array
        self._cv = threading.Condition()
        self._incoming: deque[_Sequence] = deque()
        self._running = False
        self._thread: threading.Thread | None = None
        self._admitted = 0  # sequences submitted and not yet finished; loop-side count
        self._active = 0  # sequences holding a slot; worker-side
        # decode_calls / max_seqs_per_decode show the batching: with N sequences decoded
        # together, one llama_decode yields up to N tokens (turn-taking would give 1 each).
        self.stats = {"requests": 0, "completed": 0, "cancelled": 0, "busy": 0,
                      "prompt_tokens": 0, "cached_prompt_tokens": 0, "completion_tokens": 0,
                      "decode_calls": 0, "max_seqs_per_decode": 0}

    # LLMClient's name is "local"; Component's name is "llm". A property keeps both.
    @property
    def served_name(self) -> str:
        return self.client_name

    # ------------------------------------------------------------ Component

    async def start(self) -> None:
        if not self.settings.model_path.is_file():
            raise LLMError(f"LLM model {self.settings.model_path} does not exist "
                           "(run `hybrid-agent models fetch --role llm` or set llm.model)")
        await asyncio.to_thread(self._load)
        self._running = True
        self._thread = threading.Thread(target=self._worker, name="llm-engine", daemon=True)
        self._thread.start()
        log.info("llm: %s loaded (%d ctx, %d slots, %d threads; weight repacking %s)",
                 self.settings.model_id, self._n_ctx, self.settings.slots,
                 self.settings.threads, self.weight_repack)

    async def stop(self) -> None:
        with self._cv:
            self._running = False
            self._cv.notify_all()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, STOP_JOIN_TIMEOUT_S)
            self._thread = None
        await asyncio.to_thread(self._unload)

    def healthy(self) -> bool:
        return self._thread is None or self._thread.is_alive()

    def describe(self) -> dict[str, Any]:
        return {"model": self.settings.model_id, "context": self._n_ctx,
                "weight_repack": self.weight_repack,
                "slots": self.settings.slots, "queue": self.settings.queue,
                "active": self._active, "admitted": self._admitted, **self.stats}

    def status_fragment(self) -> str:
        return f"llm {self.settings.model_id} {self._active}/{self.settings.slots} slots"

    # ------------------------------------------------------------ LLMClient

    def model_ids(self) -> list[str]:
        return [self.settings.model_id]

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Generate the answer; LLMError before the first chunk when it cannot start."""
        if request.model not in ("default", self.settings.model_id):
            raise UnknownModel(f"model {request.model!r} is not served here; "
                               f"try {self.settings.model_id!r} or 'default'")
        if self._ctx is None or not self._running:
            raise LLMError("the local model is not loaded")
        limit = self.settings.slots + self.settings.queue
        if self._admitted >= limit:
            self.stats["busy"] += 1
            raise LLMBusy(f"all {self.settings.slots} slots and the queue of "
                          f"{self.settings.queue} are taken", BUSY_RETRY_AFTER_S)
        self._admitted += 1
        seq: _Sequence | None = None
        try:
            prep = await asyncio.to_thread(self._prepare, request)
            seq = _Sequence(prep, asyncio.get_running_loop())
            self.stats["requests"] += 1
            with self._cv:
                self._incoming.append(seq)
                self._cv.notify()
            while True:
                kind, value = await seq.events.get()
                if kind == "text":
                    yield ChatChunk(content=value, served_by=self.client_name)
                elif kind == "end":
                    finish, usage, text = value
                    yield self._final_chunk(prep, finish, usage, text)
                    self.stats["completed"] += 1
                    return
                else:
                    raise value
        finally:
            self._admitted -= 1
            if seq is not None and not seq.finished:
                seq.cancelled = True
                self.stats["cancelled"] += 1
                with self._cv:
                    self._cv.notify()

    # ------------------------------------------------------------ preparing (thread)

    def _prepare(self, request: ChatRequest) -> _Prepared:
        """Validate, template, tokenize; runs in a worker thread, never the loop."""
        constraint: grammar.Constraint | None = None
        messages = _plain_messages(request.messages)
        if request.tools:
            constraint = grammar.for_tools(request.tools, request.tool_choice)
            if constraint is not None:
                messages = _with_system(messages, grammar.tools_prompt(
                    request.tools, constraint.mode == "tools"))
        if constraint is None:
            constraint = grammar.for_response_format(request.response_format)
        size = sum(len(str(m.get("content") or "").encode()) for m in messages)
        if size > self.settings.max_prompt_bytes:
            raise PromptTooLong(f"the prompt is {size} bytes; at most "
                                f"{self.settings.max_prompt_bytes} are accepted")
        stops = _check_stops(request.stop)
        try:
            prompt = self._formatter(messages=messages).prompt
        except Exception as exc:  # jinja raises many types for malformed messages
            raise InvalidRequest(f"messages cannot be rendered by the model's chat "
                                 f"template: {exc}") from None
        tokens = self._tokenize(prompt)
        if len(tokens) >= self._n_ctx:
            raise PromptTooLong(f"the prompt is {len(tokens)} tokens; the context holds "
                                f"{self._n_ctx} (llm.context), including the answer")
        max_tokens = request.max_tokens or self.settings.max_tokens
        if request.max_tokens is not None and request.max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1")
        seed = request.seed if request.seed is not None else random.getrandbits(32)
        return _Prepared(tokens=tokens, max_tokens=max_tokens, stops=stops,
                         temperature=request.temperature, top_p=request.top_p, seed=seed,
                         constraint=constraint)

    def _tokenize(self, text: str) -> list[int]:
        import llama_cpp as lc

        data = text.encode()
        n_max = len(data) + 8
        buf = (lc.llama_token * n_max)()
        n = lc.llama_tokenize(self._vocab, data, len(data), buf, n_max, self._add_bos, True)
        if n < 0:
            raise PromptTooLong(f"the prompt needs {-n} tokens")
        return list(buf[:n])

    def _final_chunk(self, prep: _Prepared, finish: str, usage: dict[str, int],
                     text: str) -> ChatChunk:
        mode = prep.constraint.mode if prep.constraint else ""
        if mode in ("tools", "auto") and text.startswith("{") and finish == "stop":
            try:
                call = grammar.parse_tool_call(text, "call_" + uuid.uuid4().hex[:24])
            except (ValueError, KeyError, TypeError):
                log.warning("a grammar-constrained tool call did not parse: %.200r", text)
            else:
                return ChatChunk(tool_calls=[call], finish_reason="tool_calls", usage=usage,
                                 served_by=self.client_name)
        if mode == "tools" or (mode == "auto" and text.startswith("{")):
            # The grammar was cut short by max_tokens: say so instead of emitting broken JSON.
            return ChatChunk(content=text, finish_reason=finish, usage=usage,
                             served_by=self.client_name)
        return ChatChunk(finish_reason=finish, usage=usage, served_by=self.client_name)

    # ------------------------------------------------------------ loading (thread)

    def _load(self) -> None:
        # OpenMP threads that spin between graph ops starve each other on a shared box
        # (measured: 20x slower with two cores and other load); sleeping costs little.
        # Read once when libgomp loads, i.e. on the first llama_cpp import.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import llama_cpp as lc
        from llama_cpp import _logger
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        _logger.set_verbose(False)  # llama.cpp prints every tensor otherwise
        from appliance.llm import cpu

        s = self.settings
        lc.llama_backend_init()
        repack, self.weight_repack = cpu.resolve_weight_repack(
            s.weight_repack, cpu.system_info(), cpu.cpu_flags())
        mparams = lc.llama_model_default_params()
        mparams.use_extra_bufts = repack
        model = lc.llama_model_load_from_file(str(s.model_path).encode(), mparams)
        if not model:
            raise LLMError(f"llama.cpp cannot load {s.model_path} (not a GGUF model?)")
        cparams = lc.llama_context_default_params()
        cparams.n_ctx = s.context
        cparams.n_batch = BATCH_TOKENS
        cparams.n_ubatch = BATCH_TOKENS
        cparams.n_seq_max = s.slots
        cparams.n_threads = s.threads
        cparams.n_threads_batch = s.threads
        # One KV pool shared by all slots: a long conversation may use the whole context.
        cparams.kv_unified = True
        cparams.no_perf = True
        ctx = lc.llama_init_from_model(model, cparams)
        if not ctx:
            lc.llama_model_free(model)
            raise LLMError(f"llama.cpp cannot create a context of {s.context} tokens")
        self._model, self._ctx = model, ctx
        self._vocab = lc.llama_model_get_vocab(model)
        self._n_ctx = lc.llama_n_ctx(ctx)
        self._add_bos = bool(lc.llama_vocab_get_add_bos(self._vocab))
        template = lc.llama_model_chat_template(model, None)
        if not template:
            raise LLMError(f"{s.model_path} has no tokenizer.chat_template")
        eos = self._piece(lc.llama_vocab_eos(self._vocab), special=True).decode(errors="replace")
        bos = self._piece(lc.llama_vocab_bos(self._vocab), special=True).decode(errors="replace")
        self._formatter = Jinja2ChatFormatter(template.decode(), eos_token=eos, bos_token=bos,
                                              add_generation_prompt=True)

    def _unload(self) -> None:
        import llama_cpp as lc

        if self._ctx is not None:
            lc.llama_free(self._ctx)
            self._ctx = None
        if self._model is not None:
            lc.llama_model_free(self._model)
            self._model = None

    def _piece(self, token: int, special: bool = False) -> bytes:
        import llama_cpp as lc

        buf = ctypes.create_string_buffer(PIECE_BUF)
        n = lc.llama_token_to_piece(self._vocab, token, buf, PIECE_BUF, 0, special)
        return buf.raw[:max(n, 0)]

    # ------------------------------------------------------------ the worker thread

    def _worker(self) -> None:
        import llama_cpp as lc

        batch = lc.llama_batch_init(BATCH_TOKENS, 0, 1)
        mem = lc.llama_get_memory(self._ctx)
        free_ids = list(range(self.settings.slots))
        # Tokens still in the KV cache of each free slot: a new prompt sharing their
        # prefix (the same conversation, the same system prompt) skips decoding it again.
        cached: dict[int, list[int]] = {}
        active: list[_Sequence] = []
        try:
            while True:
                with self._cv:
                    while self._running and not active and not self._incoming:
                        self._cv.wait()
                    if not self._running:
                        break
                    while self._incoming and free_ids:
                        seq = self._incoming.popleft()
                        if seq.cancelled:
                            continue
                        self._assign_slot(seq, mem, free_ids, cached, active)
                        active.append(seq)
                self._active = len(active)
                for seq in [s for s in active if s.cancelled]:
                    self._release(seq, mem, free_ids, active, cached)
                for seq in [s for s in active if s.sampler is None]:
                    try:
                        seq.sampler, seq.grammar = self._sampler(seq.prep)
                    except LLMError as exc:
                        seq.outcome = ("error", exc)
                        self._release(seq, mem, free_ids, active, cached)
                if not active:
                    continue
                in_batch = self._fill(batch, active)
                rc = lc.llama_decode(self._ctx, batch)
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
                self.stats["decode_calls"] += 1
                if len(in_batch) > self.stats["max_seqs_per_decode"]:
                    self.stats["max_seqs_per_decode"] = len(in_batch)
                for seq in in_batch:
                    seq.commit()
                    if seq.logit_index >= 0:
                        self._sample(seq)
                        if seq.finished:
                            self._release(seq, mem, free_ids, active, cached)
                self._active = len(active)
        except Exception as exc:
            log.exception("llm worker crashed")
            for seq in active:
                seq.send("error", LLMError(f"the LLM engine failed: {exc}"))
        finally:
            lc.llama_batch_free(batch)
            for seq in active:
                _free_samplers(seq)
            self._active = 0

    def _fill(self, batch: Any, active: list[_Sequence]) -> list[_Sequence]:
        """Put every generating sequence's next token, then prompt chunks, into ``batch``."""
        n = 0
        in_batch = []
        generating = [s for s in active if s.prompt_done]
        prefilling = [s for s in active if not s.prompt_done]
        for seq in generating:
            seq.staged = 1
            seq.logit_index = n
            seq.staged_tokens = [seq.next_token]
            _put(batch, n, seq.next_token, seq.n_past, seq.seq_id, True)
            n += 1
            in_batch.append(seq)
        for seq in prefilling:
            room = BATCH_TOKENS - n
            if room <= 0:
                break
            todo = seq.prep.tokens[seq.n_past:seq.n_past + room]
            last = seq.n_past + len(todo) == len(seq.prep.tokens)
            for i, tok in enumerate(todo):
                _put(batch, n, tok, seq.n_past + i, seq.seq_id, last and i == len(todo) - 1)
                n += 1
            seq.staged = len(todo)
            seq.staged_tokens = todo
            seq.logit_index = n - 1 if last else -1
            in_batch.append(seq)
        batch.n_tokens = n
        return in_batch

    def _sampler(self, prep: _Prepared) -> tuple[Any, Any]:
        """The sampler chain and, for constrained output, the grammar sampler kept apart."""
        import llama_cpp as lc

        grammar_sampler = None
        if prep.constraint is not None:
            grammar_sampler = lc.llama_sampler_init_grammar(
                self._vocab, prep.constraint.gbnf.encode(), b"root")
            if not grammar_sampler:
                raise InvalidRequest("the output constraint could not be compiled to a grammar")
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if prep.temperature <= 0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        else:
            if prep.top_p < 1.0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(prep.top_p, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(prep.temperature))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(prep.seed))
        return chain, grammar_sampler

    def _sample(self, seq: _Sequence) -> None:
        import llama_cpp as lc

        if seq.grammar is None:
            tok = lc.llama_sampler_sample(seq.sampler, self._ctx, seq.logit_index)
        else:
            tok = self._sample_constrained(seq)
        if lc.llama_vocab_is_eog(self._vocab, tok):
            self._finish(seq, "stop")
            return
        seq.generated += 1
        seq.next_token = tok
        piece = self._pieces.get(tok)
        if piece is None:
            piece = self._pieces[tok] = self._piece(tok)
        seq.feed(piece)
        if seq.stopped:
            self._finish(seq, "stop")
        elif seq.generated >= seq.prep.max_tokens or seq.n_past + 1 >= self._n_ctx:
            self._finish(seq, "length")

    def _sample_constrained(self, seq: _Sequence) -> int:
        """Sample freely, keep the token if the grammar allows it, else resample under it.

        Checking one token is cheap; running the grammar over the whole vocabulary
        every step made constrained decoding several times slower (llama-server does
        the same).
        """
        import llama_cpp as lc
        import numpy as np

        n_vocab = lc.llama_vocab_n_tokens(self._vocab)
        logits = np.ctypeslib.as_array(lc.llama_get_logits_ith(self._ctx, seq.logit_index),
                                       shape=(n_vocab,))
        if self._candidates is None or len(self._candidates) != n_vocab:
            self._candidates = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        cand = self._candidates

        def candidates() -> Any:
            cand["id"] = np.arange(n_vocab, dtype=np.int32)
            cand["logit"] = logits
            cand["p"] = 0.0
            return lc.llama_token_data_array(
                data=cand.ctypes.data_as(lc.llama_token_data_p), size=n_vocab, selected=-1,
                sorted=False)

        full = candidates()
        lc.llama_sampler_apply(seq.sampler, ctypes.byref(full))
        tok = int(full.data[full.selected].id)
        one = (lc.llama_token_data * 1)(lc.llama_token_data(tok, 0.0, 0.0))
        check = lc.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        lc.llama_sampler_apply(seq.grammar, ctypes.byref(check))
        if math.isinf(one[0].logit):
            full = candidates()
            lc.llama_sampler_apply(seq.grammar, ctypes.byref(full))
            lc.llama_sampler_apply(seq.sampler, ctypes.byref(full))
            tok = int(full.data[full.selected].id)
        lc.llama_sampler_accept(seq.grammar, tok)
        lc.llama_sampler_accept(seq.sampler, tok)
        return tok

    def _finish(self, seq: _Sequence, reason: str) -> None:
        seq.flush()
        usage = {"prompt_tokens": len(seq.prep.tokens), "completion_tokens": seq.generated,
                 "total_tokens": len(seq.prep.tokens) + seq.generated}
        self.stats["prompt_tokens"] += len(seq.prep.tokens)
        self.stats["completion_tokens"] += seq.generated
        seq.finished = True
        # Sent by _release once the slot is free, so a caller that has its answer
        # never sees the engine still counting its sequence as active.
        seq.outcome = ("end", (reason, usage, seq.full_text))

    def _assign_slot(self, seq: _Sequence, mem: Any, free_ids: list[int],
                     cached: dict[int, list[int]], active: list[_Sequence]) -> None:
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
            common = _common_prefix(held, tokens)
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
        seq.kv_tokens = list(tokens[:keep])
        self.stats["cached_prompt_tokens"] += keep

    def _release(self, seq: _Sequence, mem: Any, free_ids: list[int],
                 active: list[_Sequence], cached: dict[int, list[int]] | None = None) -> None:
        """Free ``seq``'s slot; with ``cached``, its KV stays for a prompt with the same prefix."""
        import llama_cpp as lc

        seq.finished = True
        if cached is not None:
            cached[seq.seq_id] = seq.kv_tokens
        else:
            lc.llama_memory_seq_rm(mem, seq.seq_id, -1, -1)
        _free_samplers(seq)
        active.remove(seq)
        free_ids.append(seq.seq_id)
        free_ids.sort()
        self._active = len(active)
        if seq.outcome is not None:
            seq.send(*seq.outcome)


@dataclass
class _Prepared:
    tokens: list[int]
    max_tokens: int
    stops: tuple[str, ...]
    temperature: float
    top_p: float
    seed: int
    constraint: grammar.Constraint | None


@dataclass(eq=False)
class _Sequence:
    """One request inside the worker: its position, sampler, pending text and queue."""

    prep: _Prepared
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    seq_id: int = -1
    sampler: Any = None
    grammar: Any = None
    n_past: int = 0
    staged: int = 0
    staged_tokens: list[int] = field(default_factory=list)
    kv_tokens: list[int] = field(default_factory=list)
    logit_index: int = -1
    next_token: int = -1
    generated: int = 0
    cancelled: bool = False
    finished: bool = False
    stopped: bool = False
    outcome: tuple[str, Any] | None = None  # the last event, sent when the slot is free
    full_text: str = ""
    _pending: str = ""
    _decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")(
        errors="replace"))
    started: float = field(default_factory=time.monotonic)
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def prompt_done(self) -> bool:
        return self.n_past >= len(self.prep.tokens)

    def commit(self) -> None:
        self.n_past += self.staged
        self.kv_tokens.extend(self.staged_tokens)
        self.staged = 0
        self.staged_tokens = []

    def rewind(self) -> None:
        self.staged = 0
        self.staged_tokens = []
        self.logit_index = -1

    def feed(self, piece: bytes) -> None:
        """Add a generated piece; emit what can no longer be the start of a stop string."""
        text = self._decoder.decode(piece)
        if not text:
            return
        self._pending += text
        if self._is_call():
            # A tool call is sent whole at the end, and stop strings must not cut its JSON.
            self.full_text += self._pending
            self._pending = ""
            return
        for stop in self.prep.stops:
            at = self._pending.find(stop)
            if at >= 0:
                self._pending = self._pending[:at]
                self.stopped = True
                return
        hold = _held_back(self._pending, self.prep.stops)
        ready = self._pending[:len(self._pending) - hold]
        if ready:
            self._pending = self._pending[len(ready):]
            self.full_text += ready
            self.send("text", ready)

    def flush(self) -> None:
        tail = self._pending + ("" if self.stopped else self._decoder.decode(b"", final=True))
        self._pending = ""
        if not tail:
            return
        self.full_text += tail
        if not self._is_call():
            self.send("text", tail)

    def _is_call(self) -> bool:
        mode = self.prep.constraint.mode if self.prep.constraint else ""
        # In "auto" mode the grammar lets only a call begin with "{".
        return mode == "tools" or (mode == "auto" and
                                   (self.full_text or self._pending).startswith("{"))

    def send(self, kind: str, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled = True



def _put(batch: Any, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq_id
    batch.logits[i] = logits


_TOKEN_DATA = [("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]


def _free_samplers(seq: _Sequence) -> None:
    import llama_cpp as lc

    for attr in ("sampler", "grammar"):
        sampler = getattr(seq, attr)
        if sampler is not None:
            lc.llama_sampler_free(sampler)
            setattr(seq, attr, None)


def _common_prefix(a: Any, b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters of ``text`` could begin a stop string."""
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                hold = max(hold, k)
                break
    return hold


def _check_stops(stop: tuple[str, ...]) -> tuple[str, ...]:
    if len(stop) > MAX_STOP_STRINGS:
        raise InvalidRequest(f"stop has {len(stop)} strings; at most {MAX_STOP_STRINGS}")
    for s in stop:
        if not s or len(s.encode()) > MAX_STOP_BYTES:
            raise InvalidRequest(f"each stop string must be 1-{MAX_STOP_BYTES} bytes")
    return stop


def _plain_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages the GGUF template can render: text content, tool calls written as JSON."""
    out = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if m.get("tool_calls"):
            calls = [{"name": c.get("function", {}).get("name"),
                      "arguments": _json_or_text(c.get("function", {}).get("arguments"))}
                     for c in m["tool_calls"] if isinstance(c, dict)]
            content = (content or "") + json.dumps(calls[0] if len(calls) == 1 else calls)
        out.append({"role": m.get("role", "user"), "content": content or ""})
    return out


def _with_system(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    if messages and messages[0]["role"] == "system":
        first = dict(messages[0])
        first["content"] = f"{first['content']}\n\n{text}"
        return [first, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def _json_or_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _physical_cores() -> int:
    try:
        from appliance.hardware import detect

        return max(1, detect().physical_cores)
    except Exception:
        return max(1, (os.cpu_count() or 2) // 2)
