"""Admission of voice work asked for by clients (``/api/stt``, ``/api/tts``, ...).

Inference runs on two threads, and one piper voice synthesises one piece at a
time. Left alone, three queued 4000-character ``/api/tts`` requests made a
2 s ``/api/stt`` wait 20 s, and the box's own conversation would have waited
behind them too. So client work is admitted here first:

- at most :data:`QUEUE` requests wait beyond the ones running; more get
  :class:`VoiceBusy` (503 with ``Retry-After``);
- one client (address) has at most :data:`PER_CLIENT` requests admitted at
  once; more get :class:`VoiceBusy` with ``per_client`` set (429);
- admitted requests run their inference one job at a time, in arrival
  order, on at most ``slots`` threads (one fewer than the voice component
  has), and a long text is spoken a sentence per job. The conversations on
  the box's microphone and the web page never pass through here, so they
  find a thread free and wait for at most one client's sentence.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import AsyncIterator

from appliance.errors import ApplianceError
from appliance.voice.sentences import SentenceSplitter

#: Requests that may wait beyond those running.
QUEUE = 4
#: Requests one client may have admitted at once.
PER_CLIENT = 2
#: Seconds one request is assumed to take before any was measured.
FIRST_ESTIMATE_S = 2.0
MAX_RETRY_AFTER_S = 120
RETRY_WHEN_STOPPING_S = 10


class VoiceBusy(ApplianceError):
    """No room for this request now; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: int, *, per_client: bool = False) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.per_client = per_client


class Admission:
    """Counts admitted client requests and hands out inference turns, first come first served."""

    def __init__(self, slots: int = 1, *, queue: int = QUEUE,
                 per_client: int = PER_CLIENT) -> None:
        self.slots = max(1, slots)
        self.queue = queue
        self.per_client = per_client
        self.admitted = 0
        self.refused = 0
        self._by_client: collections.Counter[str] = collections.Counter()
        self._running = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._mean_s = FIRST_ESTIMATE_S
        self.closed = False

    def close(self) -> None:
        """The voice is stopping: every waiting and later turn gets VoiceBusy (503)."""
        self.closed = True
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(self._stopping())

    def _stopping(self) -> VoiceBusy:
        return VoiceBusy("the voice is stopping (the node shuts down)", RETRY_WHEN_STOPPING_S)

    @contextlib.asynccontextmanager
    async def request(self, client: str) -> AsyncIterator[None]:
        """Admit one request from ``client`` for the duration of the block, or VoiceBusy."""
        if self._by_client[client] >= self.per_client:
            self.refused += 1
            raise VoiceBusy(f"this client already has {self._by_client[client]} voice requests "
                            f"in progress (at most {self.per_client})", self._retry_after(),
                            per_client=True)
        if self.admitted >= self.slots + self.queue:
            self.refused += 1
            raise VoiceBusy(f"the voice queue is full ({self.admitted} requests in progress or "
                            "waiting)", self._retry_after())
        self.admitted += 1
        self._by_client[client] += 1
        start = time.monotonic()
        try:
            yield
        finally:
            self.admitted -= 1
            self._by_client[client] -= 1
            if self._by_client[client] <= 0:
                del self._by_client[client]
            self._mean_s = 0.8 * self._mean_s + 0.2 * (time.monotonic() - start)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One inference job of an admitted request: waits for a free slot, in order."""
        if self.closed:
            raise self._stopping()
        if self._running >= self.slots or self._waiters:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except BaseException:
                if fut.done() and not fut.cancelled():
                    self._release()  # the slot was handed over as we were cancelled
                elif fut in self._waiters:
                    self._waiters.remove(fut)
                raise
        else:
            self._running += 1
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the next in line
                return
        self._running -= 1

    def _retry_after(self) -> int:
        ahead = max(1, self.admitted - self.slots + 1)
        return min(MAX_RETRY_AFTER_S, max(1, math.ceil(self._mean_s * ahead / self.slots)))

    def describe(self) -> dict[str, int]:
        return {"admitted": self.admitted, "running": self._running,
                "waiting": len(self._waiters), "refused": self.refused}


def speech_pieces(text: str) -> list[str]:
    """``text`` cut where speech may pause (sentences, long clauses), one inference job each."""
    splitter = SentenceSplitter()
    return splitter.feed(text) + splitter.flush()
