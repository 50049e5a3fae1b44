"""OpenAI's audio API over the box's own models: POST /v1/audio/transcriptions and
POST /v1/audio/speech.

Same trust as the rest of /v1 (the request-signing guard: loopback, or a
signed peer). Transcriptions take a multipart upload of any file PyAV decodes
(WAV, MP3, OGG/Opus, M4A/AAC, FLAC, WebM), bounded by ``voice.max_stt_bytes``
and ``voice.max_utterance_s``, and answer json, text, verbose_json, srt or vtt.
Speech answers wav, pcm (24 kHz 16-bit mono, as OpenAI's), mp3, opus, aac or
flac, streamed: each sentence is sent as soon as piper has made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from typing import Any

import numpy as np
from aiohttp import web

from appliance.voice.audio import StreamResampler, read_wav, to_pipeline
from appliance.voice.codecs import ENCODINGS, Encoder, decode
from appliance.voice.component import VoiceComponent
from appliance.voice.errors import AudioFormatError, AudioTooLong, TextError
from appliance.voice.stt import Transcript
from appliance.web import forms
from appliance.web.bodies import read_body, read_json, set_body_limit
from appliance.web.errors import ApiError

VOICE = web.AppKey("openai_audio_voice", VoiceComponent)
TRANSCRIPTION_FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac",
                 "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm"}
#: OpenAI's voices: accepted, spoken with the box's voice (clients hard-code them).
OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova",
                 "onyx", "sage", "shimmer", "verse")
#: OpenAI's pcm is 24 kHz 16-bit little-endian mono.
PCM_RATE = 24000
#: Form fields other than the file: small.
MAX_FIELD_BYTES = 8192
#: Whisper's prompt window is 224 tokens; a few thousand characters is more than enough.
MAX_PROMPT_CHARS = 4000
MAX_NAME_CHARS = 128
MIN_SPEED, MAX_SPEED = 0.25, 4.0
#: Form overhead allowed above voice.max_stt_bytes before a body is refused unread.
FORM_SLACK_BYTES = 64 * 1024


def setup(app: web.Application, voice: VoiceComponent | None) -> None:
    """Add /v1/audio/*; with voice off they answer 503."""
    if voice is not None:
        app[VOICE] = voice
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/speech", speech)
    if voice is not None:  # an upload: more than the JSON routes' limit
        set_body_limit(app, "POST", "/v1/audio/transcriptions",
                       voice.settings.max_stt_bytes + FORM_SLACK_BYTES,
                       code="audio_too_large", setting="voice.max_stt_bytes")


# ---------------------------------------------------------------- transcriptions


async def transcriptions(request: web.Request) -> web.Response:
    voice = _voice(request)
    limit = voice.settings.max_stt_bytes
    if request.content_length is not None and request.content_length > limit + FORM_SLACK_BYTES:
        raise _too_large(limit)
    boundary = forms.boundary_of(request.headers.get("Content-Type", ""))
    body = await read_body(request)  # bounded in size (chunked too) and in time
    parts = await asyncio.to_thread(forms.parse, body, boundary)
    fields, upload = _fields(parts, limit)
    response_format = _choice(fields, "response_format", TRANSCRIPTION_FORMATS, "json")
    temperature = _number(fields, "temperature", 0.0, 0.0, 1.0)
    language = _language(voice, fields.get("language", ""))
    prompt = fields.get("prompt", "")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(400, f"prompt is longer than {MAX_PROMPT_CHARS} characters",
                       code="invalid_request", param="prompt")
    if fields.get("stream", "false").lower() not in ("false", "0", ""):
        raise ApiError(400, "streamed transcription is not supported; leave stream unset",
                       code="invalid_request", param="stream")
    granularities = set(fields.getall("timestamp_granularities[]", [])) \
        | set(fields.getall("timestamp_granularities", []))
    if granularities - {"segment", "word"}:
        raise ApiError(400, "timestamp_granularities may hold segment and word",
                       code="invalid_request", param="timestamp_granularities")
    if "word" in granularities and response_format != "verbose_json":
        raise ApiError(400, "word timestamps need response_format verbose_json",
                       code="invalid_request", param="timestamp_granularities")
    samples = await _decode(upload, voice.settings.max_utterance_s)
    await _wait_loaded(voice)
    timed = response_format in ("verbose_json", "srt", "vtt")
    transcript = await voice.transcribe(samples, language=language, prompt=prompt,
                                        temperature=temperature, timestamps=timed,
                                        words="word" in granularities)
    return _transcription_response(transcript, response_format, "word" in granularities)


def _fields(parts: list[forms.Part], limit: int) -> tuple[Any, bytes]:
    from multidict import MultiDict

    fields: MultiDict[str] = MultiDict()
    upload: bytes | None = None
    for part in parts:
        if part.name == "file":
            if len(part.data) > limit:
                raise _too_large(limit)
            upload = part.data
        elif len(part.data) > MAX_FIELD_BYTES:
            raise ApiError(400, f"form field {part.name!r} is longer than {MAX_FIELD_BYTES} "
                                "bytes", code="invalid_request", param=part.name)
        else:
            fields.add(part.name, part.data.decode("utf-8", "replace").strip())
    if upload is None:
        raise ApiError(400, "the form has no file: send the audio as the field `file`",
                       code="invalid_request", param="file")
    if not upload:
        raise ApiError(400, "the uploaded file is empty", code="invalid_audio", param="file")
    return fields, upload


async def _decode(data: bytes, max_s: float) -> np.ndarray:
    """Any supported file -> 16 kHz mono float32, off the event loop."""

    def run() -> np.ndarray:
        if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            with contextlib.suppress(AudioFormatError):  # e.g. float WAV: PyAV reads it
                audio = read_wav(data)
                if audio.duration_s > max_s:
                    raise AudioTooLong(f"audio is {audio.duration_s:.1f} s long; at most "
                                       f"{max_s:.0f} s are accepted (voice.max_utterance_s)")
                return to_pipeline(audio)
        return decode(data, max_s)

    try:
        return await asyncio.to_thread(run)
    except AudioTooLong as exc:
        raise ApiError(413, str(exc), code="audio_too_long", param="file") from None
    except AudioFormatError as exc:
        raise ApiError(400, str(exc), code="invalid_audio", param="file") from None


def _transcription_response(t: Transcript, fmt: str, words: bool) -> web.Response:
    if fmt == "json":
        return web.json_response({"text": t.text})
    if fmt == "text":
        return web.Response(text=t.text + "\n", content_type="text/plain")
    if fmt == "srt":
        return web.Response(text=_subtitles(t, ",", numbered=True),
                            content_type="application/x-subrip")
    if fmt == "vtt":
        return web.Response(text="WEBVTT\n\n" + _subtitles(t, ".", numbered=False),
                            content_type="text/vtt")
    body: dict[str, Any] = {
        "task": "transcribe", "language": t.language, "duration": t.duration_s, "text": t.text,
        "segments": [{"id": i, "seek": 0, "start": s.start, "end": s.end, "text": s.text,
                      "tokens": list(s.tokens), "temperature": 0.0,
                      "avg_logprob": s.avg_logprob, "compression_ratio": s.compression_ratio,
                      "no_speech_prob": s.no_speech_prob} for i, s in enumerate(t.segments)]}
    if words:
        body["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end}
                         for s in t.segments for w in s.words]
    return web.json_response(body)


def _subtitles(t: Transcript, comma: str, *, numbered: bool) -> str:
    cues = []
    for i, s in enumerate(t.segments, 1):
        timing = f"{_clock(s.start, comma)} --> {_clock(s.end, comma)}"
        cues.append(f"{i}\n{timing}\n{s.text.strip()}\n" if numbered
                    else f"{timing}\n{s.text.strip()}\n")
    return "\n".join(cues)


def _clock(seconds: float, comma: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{comma}" \
           f"{ms % 1000:03d}"


# ---------------------------------------------------------------- speech


async def speech(request: web.Request) -> web.StreamResponse:
    voice = _voice(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, 'the body must be a JSON object like {"input": "...", '
                            '"voice": "alloy"}', code="invalid_request")
    try:
        text = voice.check_text(body.get("input"))
    except TextError as exc:
        raise ApiError(400, str(exc).replace("text is", "input is"), code="invalid_request",
                       param="input") from None
    _check_voice(voice, body.get("voice"))
    fmt = _choice(body, "response_format", SPEECH_FORMATS, "mp3")
    speed = _number(body, "speed", 1.0, MIN_SPEED, MAX_SPEED)
    if body.get("stream_format", "audio") != "audio":
        raise ApiError(400, "stream_format sse is not supported; the audio itself is streamed",
                       code="invalid_request", param="stream_format")
    model = body.get("model", "")
    if not isinstance(model, str) or len(model) > MAX_NAME_CHARS:
        raise ApiError(400, "model must be a short string", code="invalid_request",
                       param="model")
    await _wait_loaded(voice)
    rate = voice.tts_rate
    encoder = Encoder(fmt, rate) if fmt in ENCODINGS else None
    # Raw PCM is OpenAI's 24 kHz: one resampler for the whole answer, so sentences join cleanly.
    resampler = StreamResampler(rate, PCM_RATE) if fmt == "pcm" and rate != PCM_RATE else None
    resp = web.StreamResponse(headers={"Content-Type": CONTENT_TYPES[fmt],
                                       "X-Sample-Rate": str(_out_rate(fmt, rate, encoder))})
    await resp.prepare(request)
    if fmt == "wav":
        await resp.write(_streaming_wav_header(rate))
    try:
        async for audio in voice.synthesize_stream(text, speed):
            await resp.write(await asyncio.to_thread(_encode, audio, encoder, resampler))
        if encoder is not None:
            await resp.write(await asyncio.to_thread(encoder.finish))
        if resampler is not None:
            await resp.write(await resampler.end())
    except ConnectionError:
        return resp  # the client went away
    await resp.write_eof()
    return resp


def _encode(audio: np.ndarray, encoder: Encoder | None,
            resampler: StreamResampler | None) -> bytes:
    if encoder is not None:
        return encoder.encode(audio)
    pcm = audio.astype("<i2", copy=False).tobytes()
    return resampler.process(pcm) if resampler is not None else pcm


def _out_rate(fmt: str, rate: int, encoder: Encoder | None) -> int:
    if encoder is not None:
        return encoder.rate
    return PCM_RATE if fmt == "pcm" else rate


def _streaming_wav_header(rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes say "unknown, read to the end" (0xFFFFFFFF)."""
    unknown = 0xFFFFFFFF
    return (b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
            + b"data" + struct.pack("<I", unknown))


def _check_voice(voice: VoiceComponent, name: Any) -> None:
    ours = voice.settings.tts_voice.name.removesuffix(".onnx")
    if name is None or name in OPENAI_VOICES or name == ours:
        return
    shown = str(name)[:64] if isinstance(name, str) else type(name).__name__
    raise ApiError(400, f"unknown voice {shown!r}: this box speaks with {ours} (OpenAI's "
                        f"voice names {', '.join(OPENAI_VOICES)} are accepted for it)",
                   code="invalid_request", param="voice")


# ---------------------------------------------------------------- shared


def _voice(request: web.Request) -> VoiceComponent:
    voice = request.app.get(VOICE)
    if voice is None:
        raise ApiError(503, "speech is off on this node (voice.enabled is false)",
                       code="voice_off")
    return voice


async def _wait_loaded(voice: VoiceComponent) -> None:
    if not voice.loaded.is_set():
        raise ApiError(503, "the speech models are still loading; try again in a few seconds",
                       code="not_ready", headers={"Retry-After": "5"})


def _language(voice: VoiceComponent, code: str) -> str | None:
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    known = voice.stt.languages if voice.stt is not None else []
    if base not in known:
        raise ApiError(400, f"language {code[:16]!r} is not an ISO-639-1 code the model "
                            "knows (en, de, fr, ...)", code="invalid_request", param="language")
    return base


def _choice(values: Any, key: str, allowed: tuple[str, ...], default: str) -> str:
    value = values.get(key) or default
    if value not in allowed:
        shown = str(value)[:32]
        raise ApiError(400, f"{key} {shown!r} is not supported; use one of "
                            f"{', '.join(allowed)}", code="invalid_request", param=key)
    return str(value)


def _number(values: Any, key: str, default: float, lo: float, hi: float) -> float:
    raw = values.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not lo <= value <= hi:
        raise ApiError(400, f"{key} must be a number from {lo:g} to {hi:g}",
                       code="invalid_request", param=key)
    return value


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the audio file is larger than {limit} bytes; at most {limit} are "
                         "accepted (voice.max_stt_bytes)", code="audio_too_large", param="file")
