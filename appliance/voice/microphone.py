"""The conversation on the box's own microphone and speaker (``voice.input``, ``voice.output``).

A task feeds the microphone's 30 ms chunks into one long-lived session; a
microphone that fails is reopened after :data:`MIC_RETRY_S`. With wake words
configured the session is hands-free; the latest events are kept for
``/api/status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import Any, Protocol

from appliance.tasks import cancel_and_wait
from appliance.voice import alsa
from appliance.voice.earcon import chime
from appliance.voice.pipeline import EventSink, VoiceSession
from appliance.voice.settings import VoiceSettings

log = logging.getLogger(__name__)

#: Seconds to wait before reopening a microphone that failed.
MIC_RETRY_S = 5.0
#: Events of the local microphone's conversation kept for /api/status.
LOCAL_EVENTS = 20
#: Events worth a log line.
LOGGED = ("transcript", "reply", "error", "barge_in", "wake")

SessionFactory = Callable[..., VoiceSession]
"""``(emit, output, conversation_id=..., echo_suppress=...) -> VoiceSession``."""


class Microphone(Protocol):
    """A source of 30 ms chunks of 16 kHz 16-bit mono PCM (ALSA's arecord, or a test's fake)."""

    def chunks(self) -> AsyncGenerator[bytes, None]: ...

    async def close(self) -> None: ...


class BoxMicrophone:
    """Runs the box's conversation from :meth:`start` until :meth:`stop`."""

    def __init__(self, settings: VoiceSettings, session: SessionFactory,
                 tts_rate: Callable[[], int],
                 microphone: Callable[[], Microphone] | None = None) -> None:
        self.settings = settings
        self._session = session
        self._tts_rate = tts_rate
        # Replaceable because a sound card cannot exist in every test.
        self._microphone = microphone or (lambda: alsa.ArecordSource(settings.input,
                                                                     settings.input_rate))
        self.output: alsa.AplayOutput | None = None
        self.events: deque[dict[str, Any]] = deque(maxlen=LOCAL_EVENTS)
        """The latest events of the conversation on the box's own microphone."""
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def healthy(self) -> bool:
        return self._task is None or not self._task.done()

    def start(self) -> None:
        alsa.check_tools()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="voice-mic")

    async def stop(self) -> None:
        await cancel_and_wait([self._task])
        self._task = None

    def recent(self) -> list[dict[str, Any]]:
        """The last transcripts, replies and errors, for /api/status."""
        return [e for e in self.events if e["type"] in ("transcript", "reply", "error")][-3:]

    async def _run(self) -> None:
        s = self.settings
        output = alsa.AplayOutput(s.output) if alsa.enabled(s.output) else None
        self.output = output
        emit: EventSink = self._keep
        session = self._session(emit, output, conversation_id="local-microphone",
                                echo_suppress=not s.echo_cancelled)
        if s.wake_words:
            await session.listen_for_wake(True, follow_up_s=s.follow_up_s,
                                          earcon=chime(self._tts_rate()) if s.earcon else None)
        try:
            while True:
                source = self._microphone()
                try:
                    async with contextlib.aclosing(source.chunks()) as chunks:
                        async for chunk in chunks:
                            await session.feed(chunk)
                except alsa.AudioDeviceError as exc:
                    log.error("microphone: %s; retrying in %.0fs", exc, MIC_RETRY_S)
                finally:
                    await source.close()
                await asyncio.sleep(MIC_RETRY_S)
        finally:
            await session.close()
            if output is not None:
                await output.stop()  # no aplay outlives the daemon

    async def _keep(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if event["type"] in LOGGED:
            log.info("voice: %s", event)
