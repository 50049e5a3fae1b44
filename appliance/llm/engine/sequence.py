"""One request inside the engine: what to generate, and its progress while it generates."""

from __future__ import annotations

import asyncio
import codecs
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from appliance.llm import grammar

_ids = itertools.count(1)
#: Longest a generated piece waits to be handed to the event loop with the next ones
#: (a reader sees ten updates a second).
HANDOVER_S = 0.1
#: The first pieces of an answer go at once (a voice reply speaks a long first
#: sentence's first four words as soon as they are there).
FIRST_PIECES = 8
#: Text that ends a sentence, and text that ends a clause of the first sentence: handed
#: over at once.
_ENDS_CLAUSE = re.compile(r"[.!?;:,\n]")
_ENDS_SENTENCE = re.compile(r"[.!?\n]")


class Outbox:
    """The events of the worker's steps, handed to each event loop in one call.

    One ``call_soon_threadsafe`` per hand-over instead of one per token and sequence:
    fewer wake-ups of the loop and fewer hand-overs of the GIL while several sequences
    decode. Text may wait up to :data:`HANDOVER_S` to go with the next: every wake-up
    of the loop runs Python on a core the decode's OpenMP threads are waiting for, at
    every token when one client streams alone. The first :data:`FIRST_PIECES` pieces,
    every clause end of the first sentence (the voice starts speaking a long one
    before it is whole), every sentence end (the voice speaks each as soon as it is
    complete), an end or an error go at once.
    """

    def __init__(self) -> None:
        self._items: list[tuple[Sequence, str, Any]] = []
        self._urgent = False
        self._last = 0.0

    def put(self, seq: Sequence, kind: str, value: Any) -> None:
        if kind != "text" or seq.delivered < FIRST_PIECES:
            self._urgent = True
        elif _ENDS_SENTENCE.search(value[0]):
            self._urgent = seq.said_a_sentence = True
        elif not seq.said_a_sentence and _ENDS_CLAUSE.search(value[0]):
            self._urgent = True
        seq.delivered += 1
        self._items.append((seq, kind, value))

    def flush(self, force: bool = True) -> None:
        """Hand over what is waiting; unless ``force``, text only once HANDOVER_S has
        passed since the last hand-over."""
        if not self._items:
            return
        now = time.monotonic()
        if not (force or self._urgent or now - self._last >= HANDOVER_S):
            return
        self._last = now
        self._urgent = False
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Sequence, str, Any]]] = {}
        for item in self._items:
            by_loop.setdefault(item[0].loop, []).append(item)
        self._items = []
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                for seq, _, _ in items:
                    seq.cancelled = True


def _deliver(items: list[tuple[Sequence, str, Any]]) -> None:
    for seq, kind, value in items:
        seq.events.put_nowait((kind, value))


@dataclass
class Prepared:
    """A validated, tokenized request."""

    tokens: list[int]
    max_tokens: int
    stops: tuple[str, ...]
    temperature: float
    top_p: float
    seed: int
    constraint: grammar.Constraint | None
    logprobs: int = -1
    """-1: none; else how many top alternatives to report per token (0-20)."""


@dataclass(eq=False)
class Sequence:
    """One request inside the worker: its slot, position, sampler, pending text and queue.

    Events go to the event loop as ``(kind, value)``: ``("text", (str, logprobs))``,
    ``("end", (finish_reason, usage, full_text, logprobs))`` or ``("error", exc)``.
    """

    prep: Prepared
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    outbox: Outbox | None = None
    """Where the worker collects this step's events (None: each is sent at once)."""
    delivered: int = 0
    """Events put in the outbox so far."""
    said_a_sentence: bool = False
    """A piece that ends a sentence has been put in the outbox."""
    seq_id: int = -1
    sampler: Any = None  # a sampling.SequenceSampler, made in the worker
    n_past: int = 0
    cached: int = 0
    """Prompt tokens found in the KV cache (not decoded again)."""
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
    first_token_at: float = 0.0
    last_token_at: float = 0.0
    _pending: str = ""
    _pending_logprobs: list[dict[str, Any]] = field(default_factory=list)
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

    def feed(self, piece: bytes, logprob: dict[str, Any] | None = None) -> None:
        """Add a generated piece; emit what can no longer be the start of a stop string."""
        if logprob is not None:
            self._pending_logprobs.append(logprob)
        text = self._decoder.decode(piece)
        if not text:
            return
        self._pending += text
        if self.is_call():
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
        hold = held_back(self._pending, self.prep.stops)
        ready = self._pending[:len(self._pending) - hold]
        if ready:
            self._pending = self._pending[len(ready):]
            self.full_text += ready
            self.send("text", (ready, self._take_logprobs()))

    def flush(self) -> list[dict[str, Any]] | None:
        """Send the text held back; the logprobs not sent yet (for the final event)."""
        tail = self._pending + ("" if self.stopped else self._decoder.decode(b"", final=True))
        self._pending = ""
        if tail:
            self.full_text += tail
            if not self.is_call():
                self.send("text", (tail, self._take_logprobs()))
        return self._take_logprobs()

    def is_call(self) -> bool:
        mode = self.prep.constraint.mode if self.prep.constraint else ""
        # In "auto" mode the grammar lets only a call begin with "{" or "[".
        return mode == "tools" or (mode == "auto" and
                                   (self.full_text or self._pending).startswith(("{", "[")))

    def send(self, kind: str, value: Any) -> None:
        if self.outbox is not None:
            self.outbox.put(self, kind, value)
            return
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled = True

    def _take_logprobs(self) -> list[dict[str, Any]] | None:
        if self.prep.logprobs < 0:
            return None
        out, self._pending_logprobs = self._pending_logprobs, []
        return out


def held_back(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters of ``text`` could begin a stop string."""
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:k]):
                hold = max(hold, k)
                break
    return hold


def common_prefix(a: Any, b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i
