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

from aiohttp import WSMsgType, web

from appliance.voice.audio import float_to_pcm16, pcm16_to_float, resample, write_wav
from appliance.voice.component import VoiceComponent
from appliance.voice.errors import AudioFormatError, AudioTooLong, TextError
from appliance.web import owners
from appliance.web.errors import ApiError, read_json

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
    app.router.add_get("/api/voice", voice_socket)


async def stt_handler(request: web.Request) -> web.Response:
    """A WAV body -> ``{"text", "language", "duration_s"}``."""
    voice = request.app[VOICE]
    limit = voice.settings.max_stt_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"WAV is {request.content_length} bytes; at most {limit} are "
                            "accepted (voice.max_stt_bytes)", code="audio_too_large")
    data = await _read_bounded(request, limit)
    if len(data) > limit:  # a chunked upload, which announced no length
        raise ApiError(413, f"WAV is larger than {limit} bytes; at most {limit} are accepted "
                            "(voice.max_stt_bytes)", code="audio_too_large")
    try:
        transcript = await voice.transcribe_wav(data)
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
        samples = await voice.speak(body.get("text"))
    except TextError as exc:
        raise ApiError(400, str(exc), code="invalid_text", param="text") from None
    return web.Response(body=write_wav(samples, voice.tts_rate), content_type="audio/wav")


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
    rate = 16000
    try:
        while True:
            try:
                msg = await ws.receive(timeout=IDLE_TIMEOUT_S)
            except TimeoutError:
                await channel.event({"type": "error", "code": "idle",
                                     "message": f"no audio for {IDLE_TIMEOUT_S:.0f} s"})
                break
            if msg.type == WSMsgType.BINARY:
                pcm = msg.data
                if rate != 16000:
                    pcm = float_to_pcm16(resample(pcm16_to_float(pcm), rate))
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
                    rate = new_rate
                elif kind == "end":
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


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    """The body, or its first ``limit + 1`` bytes when it is longer (chunked uploads)."""
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(min(1 << 16, limit + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def _control(text: str) -> dict[str, Any] | None:
    if len(text) > MAX_CONTROL_CHARS:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _conversation_id(request: web.Request) -> str:
    cid = request.query.get("conversation_id")
    if cid is not None and not _CONVERSATION_ID.match(cid):
        raise ApiError(400, "conversation_id must be 1-128 letters, digits or _.:-",
                       code="invalid_request", param="conversation_id")
    return owners.claim(request, cid)  # the caller's own, or a new one it now owns
