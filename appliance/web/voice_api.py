"""Voice over HTTP: POST /api/stt, POST /api/tts and the WebSocket /api/voice.

/api/voice carries 16-bit mono PCM up (16 kHz unless a ``start`` message
names another rate) as binary messages and JSON text messages both ways; the
reply audio comes down as binary messages, each announced by an ``audio``
event giving its sample rate. The protocol is documented in docs/api.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from appliance import jsonbounds
from appliance.voice.admission import VoiceBusy, speech_pieces
from appliance.voice.audio import PIPELINE_RATE, StreamResampler, write_wav
from appliance.voice.component import VoiceComponent
from appliance.voice.errors import AudioFormatError, AudioTooLong, TextError
from appliance.voice.pipeline import VoiceSession
from appliance.web import owners
from appliance.web.bodies import json_text_limit, read_body, read_json, set_body_limit
from appliance.web.errors import ApiError

log = logging.getLogger(__name__)

VOICE = web.AppKey("voice", VoiceComponent)
#: Largest WebSocket message: ~16 s of 16 kHz PCM; the browser sends 20-100 ms at a time.
MAX_WS_MESSAGE = 512 * 1024
#: Largest JSON control message from the client.
MAX_CONTROL_CHARS = 4096
#: A voice socket with no message for this long is closed.
IDLE_TIMEOUT_S = 300.0
HEARTBEAT_S = 30.0
MIN_RATE, MAX_RATE = 8000, 48000
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def setup(app: web.Application, voice: VoiceComponent) -> None:
    app[VOICE] = voice
    app.router.add_post("/api/stt", stt_handler)
    app.router.add_post("/api/tts", tts_handler)
    set_body_limit(app, "POST", "/api/stt", voice.settings.max_stt_bytes,
                   code="audio_too_large", setting="voice.max_stt_bytes")
    set_body_limit(app, "POST", "/api/tts", json_text_limit(voice.settings.max_tts_chars),
                   setting="voice.max_tts_chars")
    app.router.add_get("/api/voice", voice_socket)


async def stt_handler(request: web.Request) -> web.Response:
    """A WAV body -> ``{"text", "language", "duration_s"}``."""
    voice = request.app[VOICE]
    data = await read_body(request)  # at most voice.max_stt_bytes, announced or chunked
    try:
        async with voice.admission.request(request.remote or ""), voice.admission.turn():
            transcript = await voice.transcribe_wav(data)
    except VoiceBusy as exc:
        raise _busy(exc) from None
    except AudioTooLong as exc:
        raise ApiError(413, str(exc), code="audio_too_long", param="body") from None
    except AudioFormatError as exc:
        raise ApiError(400, str(exc), code="invalid_audio", param="body") from None
    return web.json_response({"text": transcript.text, "language": transcript.language,
                              "duration_s": transcript.duration_s})


async def tts_handler(request: web.Request) -> web.Response:
    """``{"text"}`` -> ``audio/wav`` at the voice's sample rate."""
    voice = request.app[VOICE]
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, 'request body must be a JSON object like {"text": "..."}',
                       code="invalid_request")
    try:
        text = voice.check_text(body.get("text"))
        async with voice.admission.request(request.remote or ""):
            parts = []
            # A sentence per job, so others' work (the box's own first) can come in between.
            for piece in speech_pieces(text):
                async with voice.admission.turn():
                    parts.append(await voice.synthesize(piece))
    except TextError as exc:
        raise ApiError(400, str(exc), code="invalid_text", param="text") from None
    except VoiceBusy as exc:
        raise _busy(exc) from None
    # Megabytes of audio for a long text: joined and encoded off the event loop.
    wav = await asyncio.to_thread(_wav, parts, voice.tts_rate)
    return web.Response(body=wav, content_type="audio/wav")


def _wav(parts: list[np.ndarray], rate: int) -> bytes:
    return write_wav(np.concatenate(parts) if parts else np.zeros(0, np.int16), rate)


def _busy(exc: VoiceBusy) -> ApiError:
    return ApiError(429 if exc.per_client else 503, str(exc),
                    code="too_many_requests" if exc.per_client else "voice_busy",
                    headers={"Retry-After": str(exc.retry_after_s)})


async def voice_socket(request: web.Request) -> web.WebSocketResponse:
    """One spoken conversation over a WebSocket."""
    voice = request.app[VOICE]
    conversation_id = _conversation_id(request)  # before the upgrade, so a 400 can be sent
    ws = web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE, heartbeat=HEARTBEAT_S)
    await ws.prepare(request)
    channel = _Channel(ws)
    session = voice.session(channel.event, channel, conversation_id=conversation_id)
    await channel.event({"type": "state", "state": "listening",
                         "conversation_id": session.conversation_id,
                         "sample_rate": voice.tts_rate})
    resampler: StreamResampler | None = None  # for a client that sends another rate
    try:
        while True:
            try:
                msg = await ws.receive(timeout=IDLE_TIMEOUT_S)
            except TimeoutError:
                await channel.event({"type": "error", "code": "idle",
                                     "message": f"no audio for {IDLE_TIMEOUT_S:.0f} s"})
                break
            if msg.type == WSMsgType.BINARY:
                pcm = msg.data if resampler is None else await resampler.feed(msg.data)
                if pcm:
                    await session.feed(pcm)
            elif msg.type == WSMsgType.TEXT:
                control = _control(msg.data)
                if control is None:
                    await channel.event({"type": "error", "code": "invalid_message",
                                         "message": "text messages must be JSON objects of at "
                                                    f"most {MAX_CONTROL_CHARS} characters with "
                                                    'a "type" of start, end or close'})
                    continue
                kind = control.get("type")
                if kind == "start":
                    new_rate = control.get("sample_rate", 16000)
                    if not isinstance(new_rate, int) or not MIN_RATE <= new_rate <= MAX_RATE:
                        await channel.event({"type": "error", "code": "invalid_sample_rate",
                                             "message": f"sample_rate must be an integer from "
                                                        f"{MIN_RATE} to {MAX_RATE}"})
                        continue
                    resampler = StreamResampler(new_rate) if new_rate != PIPELINE_RATE else None
                    if "hands_free" in control:
                        await _hands_free(voice, session, channel, control)
                elif kind == "end":
                    tail = await resampler.end() if resampler is not None else b""
                    if tail:
                        await session.feed(tail)
                    await session.end_utterance()
                elif kind == "close":
                    await session.wait_idle()
                    break
                else:
                    await channel.event({"type": "error", "code": "invalid_message",
                                         "message": f"unknown message type {str(kind)[:32]!r}; "
                                                    "expected start, end or close"})
            elif msg.type == WSMsgType.ERROR:
                log.info("voice socket error: %s", ws.exception())
                break
            else:  # CLOSE, CLOSING, CLOSED
                break
    finally:
        await session.close()
        await ws.close()
    return ws


class _Channel:
    """The socket as the session's event sink and audio output; one sender at a time."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self._lock = asyncio.Lock()
        self._announced: dict[str, Any] | None = None

    async def event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "audio":
            # Sent together with its PCM in play(), so nothing slips in between.
            self._announced = event
            return
        await self._send(event)

    async def play(self, pcm: bytes, sample_rate: int, text: str) -> None:
        announced, self._announced = self._announced, None
        header = announced or {"type": "audio", "sample_rate": sample_rate,
                               "samples": len(pcm) // 2, "text": text}
        async with self._lock:
            if self.ws.closed:
                return
            await self.ws.send_str(json.dumps(header))
            await self.ws.send_bytes(pcm)

    async def stop(self) -> None:
        await self._send({"type": "audio_stop"})

    async def _send(self, event: dict[str, Any]) -> None:
        async with self._lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(event))


async def _hands_free(voice: VoiceComponent, session: VoiceSession, channel: _Channel,
                      control: dict[str, Any]) -> None:
    """``start`` with ``hands_free``: the server listens for the wake word (or stops)."""
    on, echo_cancelled = control["hands_free"], control.get("echo_cancelled", False)
    if not isinstance(on, bool) or not isinstance(echo_cancelled, bool):
        await channel.event({"type": "error", "code": "invalid_message",
                             "message": "hands_free and echo_cancelled must be true or false"})
        return
    if on and not voice.settings.wake_words:
        await channel.event({"type": "error", "code": "no_wake_words",
                             "message": "hands-free needs a wake word, and voice.wake_words is "
                                        "empty on this node: push to talk instead"})
        return
    await session.listen_for_wake(on, follow_up_s=voice.settings.follow_up_s,
                                  echo_suppress=not echo_cancelled)


def _control(text: str) -> dict[str, Any] | None:
    if len(text) > MAX_CONTROL_CHARS:
        return None
    try:
        value = jsonbounds.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _conversation_id(request: web.Request) -> str:
    cid = request.query.get("conversation_id")
    if cid is not None and not _CONVERSATION_ID.fullmatch(cid):
        raise ApiError(400, "conversation_id must be 1-128 letters, digits or _.:-",
                       code="invalid_request", param="conversation_id")
    return owners.claim(request, cid)  # the caller's own, or a new one it now owns
