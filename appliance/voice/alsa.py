"""The box's own microphone and speaker: ALSA's ``arecord`` and ``aplay`` as child processes.

Child processes keep ALSA's C library (and a wedged sound driver) out of the
daemon. Both speak raw 16-bit mono PCM over a pipe; the capture side is
resampled to the pipeline's 16 kHz when the device runs at another rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncGenerator

from appliance.voice.audio import PIPELINE_RATE, StreamResampler, chunk_bytes
from appliance.voice.errors import AudioDeviceError

log = logging.getLogger(__name__)

DISABLED = "none"
#: Time a child gets to exit after SIGTERM before SIGKILL.
KILL_GRACE_S = 2.0
STDERR_LIMIT = 4096


def arecord_argv(device: str, rate: int) -> list[str]:
    """The capture command: raw signed 16-bit little-endian mono at ``rate``."""
    return ["arecord", "-q", "-D", device, "-t", "raw", "-f", "S16_LE", "-c", "1",
            "-r", str(rate)]


def aplay_argv(device: str, rate: int) -> list[str]:
    """The playback command for raw 16-bit mono PCM at ``rate``."""
    return ["aplay", "-q", "-D", device, "-t", "raw", "-f", "S16_LE", "-c", "1",
            "-r", str(rate)]


def enabled(device: str) -> bool:
    return bool(device) and device != DISABLED


def check_tools() -> None:
    for tool in ("arecord", "aplay"):
        if shutil.which(tool) is None:
            raise AudioDeviceError(f"{tool} not found: install alsa-utils or set "
                                   "voice.input/voice.output to none")


class ArecordSource:
    """Microphone chunks (``CHUNK_MS`` of 16 kHz 16-bit mono PCM) from ``arecord``."""

    def __init__(self, device: str, rate: int = PIPELINE_RATE) -> None:
        self.device = device
        self.rate = rate
        self._proc: asyncio.subprocess.Process | None = None

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        check_tools()
        self._proc = await asyncio.create_subprocess_exec(
            *arecord_argv(self.device, self.rate), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert self._proc.stdout is not None
        size = chunk_bytes(self.rate)
        resampler = StreamResampler(self.rate) if self.rate != PIPELINE_RATE else None
        # Resampled pieces vary in length: they are regrouped into 30 ms chunks again.
        pending = bytearray()
        step = chunk_bytes()
        try:
            while True:
                try:
                    data = await self._proc.stdout.readexactly(size)
                except asyncio.IncompleteReadError:
                    err = await self._stderr()
                    raise AudioDeviceError(f"arecord on {self.device!r} stopped: "
                                           f"{err or 'no error message'}") from None
                if resampler is None:
                    yield data
                    continue
                pending += await resampler.feed(data)
                while len(pending) >= step:
                    yield bytes(pending[:step])
                    del pending[:step]
        finally:
            await self.close()

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            await _end(proc)

    async def _stderr(self) -> str:
        if self._proc is None or self._proc.stderr is None:
            return ""
        with contextlib.suppress(Exception):
            data = await asyncio.wait_for(self._proc.stderr.read(STDERR_LIMIT), KILL_GRACE_S)
            return data.decode(errors="replace").strip()
        return ""


class AplayOutput:
    """The speaker: one ``aplay`` per sample rate, killed on :meth:`stop` (barge-in)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._proc: asyncio.subprocess.Process | None = None
        self._rate = 0
        self.bytes_written = 0

    async def play(self, pcm: bytes, sample_rate: int, text: str = "") -> None:
        if self._proc is not None and self._proc.returncode is not None:
            code, self._proc = self._proc.returncode, None  # the next play tries again
            raise AudioDeviceError(f"aplay on {self.device!r} exited with status {code}")
        if self._proc is None or self._rate != sample_rate:
            await self.stop()
            check_tools()
            self._proc = await asyncio.create_subprocess_exec(
                *aplay_argv(self.device, sample_rate), stdin=asyncio.subprocess.PIPE,
                # Nobody reads a long-lived aplay's stderr; a full pipe would stall it.
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            self._rate = sample_rate
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(pcm)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise AudioDeviceError(f"aplay on {self.device!r} exited") from None
        self.bytes_written += len(pcm)

    @property
    def running(self) -> bool:
        """An aplay is open and has not exited (a bad device makes it exit at once)."""
        return self._proc is not None and self._proc.returncode is None

    async def finish(self) -> int | None:
        """Let queued audio play out, then end the child; aplay's exit status (None if none
        was running): 0 once it played everything, non-zero when it could not."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.stdin is not None:
            proc.stdin.close()
        return await proc.wait()

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            await _end(proc)


async def _end(proc: asyncio.subprocess.Process) -> None:
    """Terminate, then kill; bounded in time whatever the child does."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    try:
        await asyncio.wait_for(_reap(proc), KILL_GRACE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_reap(proc), KILL_GRACE_S)


async def _reap(proc: asyncio.subprocess.Process) -> None:
    # Drain stdout: a full, paused pipe can keep asyncio from ever reporting the exit.
    if proc.stdout is not None:
        while await proc.stdout.read(1 << 16):
            pass
    await proc.wait()
