"""The warm-up record: what the engine was doing when a start crashed inside llama.cpp.

A crash in native code (SIGSEGV, SIGILL, an abort) kills the process before Python can
say why. So the engine writes this record before its warm-up decode and removes
it after: found at the next start, it means the last warm-up crashed. With
``llm.weight_repack: auto`` the engine then retries once with repacking off (the
known cause, llama.cpp issue 20824); a crash with repacking already off is
reported as a clear start failure instead of a silent restart loop. A record
older than :data:`STALE_S` (a power cut long ago, an old build) is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD_NAME = "llm-warmup.json"
MAX_RECORD_BYTES = 4096
# systemd's StartLimitIntervalSec is 300 s: older records are from another episode.
STALE_S = 600.0


@dataclass(frozen=True)
class Attempt:
    """One warm-up: which model, with which repacking, under which llama.cpp build."""

    model: str
    repack: bool
    build: str
    at: float = 0.0

    def same_setup(self, other: Attempt) -> bool:
        return (self.model, self.build) == (other.model, other.build)


class WarmupRecord:
    """The record file under the state directory (no file at all when ``path`` is None)."""

    def __init__(self, state_dir: Path | None) -> None:
        self.path = state_dir / RECORD_NAME if state_dir is not None else None

    def crashed(self, now: Attempt) -> Attempt | None:
        """The attempt that crashed last time with this model and build, if recent."""
        if self.path is None:
            return None
        try:
            with open(self.path, "rb") as fh:
                data = json.loads(fh.read(MAX_RECORD_BYTES))
            last = Attempt(model=str(data["model"]), repack=bool(data["repack"]),
                           build=str(data["build"]), at=float(data["at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not last.same_setup(now) or time.time() - last.at > STALE_S:
            return None
        return last

    def begin(self, attempt: Attempt) -> None:
        """Write the record durably (it must survive the crash it is there to explain)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as fh:
            json.dump({**asdict(attempt), "at": time.time()}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def end(self) -> None:
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
