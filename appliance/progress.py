"""Progress of a long transfer: a line redrawn in place on a terminal, a line every few
seconds anywhere else (the journal, an installer's log)."""

from __future__ import annotations

import time
from typing import TextIO

#: Seconds between two progress lines when the output is not a terminal.
LINE_EVERY_S = 5.0
#: Seconds between two redraws on a terminal.
REDRAW_EVERY_S = 0.2


class TransferReport:
    """Called as ``report(name, done_bytes, total_bytes)`` while ``name`` downloads
    (``total_bytes`` 0 when unknown); :meth:`finish` ends the line."""

    def __init__(self, out: TextIO, *, tty: bool | None = None,
                 every_s: float | None = None) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.every_s = every_s if every_s is not None else (
            REDRAW_EVERY_S if self.tty else LINE_EVERY_S)
        self._next = 0.0
        self._drawn = False
        self.lines = 0

    def __call__(self, name: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = bool(total) and done >= total
        if now < self._next and not finished:
            return
        self._next = now + self.every_s
        text = f"  {name}: {_mb(done)}" + (f" of {_mb(total)} ({100 * done // total}%)"
                                           if total else "")
        if self.tty:
            self.out.write("\r\033[K" + text)
            self._drawn = True
            if finished:
                self.finish()
        elif not finished or self.lines:
            # In a log: periodic lines, and the last one only if others came before it.
            self.out.write(text + "\n")
            self.lines += 1
        self.out.flush()

    def finish(self) -> None:
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
            self._drawn = False


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
