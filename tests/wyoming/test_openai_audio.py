"""OpenAI's audio API on a real daemon, through the real `openai` client."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import openai
import pytest

from appliance.voice.audio import read_wav, rms, write_wav
from appliance.voice.codecs import decode

pytestmark = pytest.mark.model

TEXT = "Turn on the kitchen lights please. Then play some music."
#: voice.max_stt_bytes of the daemon: room for a few seconds of WAV, not for 40 s.
MAX_STT_BYTES = 1 << 20
#: Syntheses of TEXT per format whose median lengths are compared.
DRAWS = 3
#: What an MP3 adds to its audio: the encoder's delay and the last frame's padding.
MP3_PADDING_S = 0.08


def _mp3(samples: np.ndarray, rate: int) -> bytes:
    """int16 mono -> MP3, with PyAV (a client's own encoder, not the server's)."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return out.getvalue()


async def test_speech_and_transcriptions_through_the_openai_client(daemon_factory, models_dir):
    d = await daemon_factory(node={"models_dir": str(models_dir)},
                             voice={"enabled": True, "language": "auto",
                                    "max_stt_bytes": MAX_STT_BYTES})
    client = openai.AsyncOpenAI(base_url=f"{d.url}/v1", api_key="unused", max_retries=0)

    # speech, streamed: wav at the voice's rate, pcm at OpenAI's 24 kHz, mp3. piper draws
    # its durations afresh each time (its noise_w): 2.97-3.16 s for TEXT over thirty
    # draws, so two single draws differ by up to 6.2 %, about what a wrong rate would
    # make (the voice's 22050 Hz samples sent as 24 kHz: 8.1 % short). So each format is
    # asked for DRAWS times and their medians are compared.
    streamed: dict[str, list[bytes]] = {"wav": [], "pcm": [], "mp3": []}
    for _ in range(DRAWS):
        for fmt, kept in streamed.items():
            async with client.audio.speech.with_streaming_response.create(
                    model="tts-1", voice="alloy", input=TEXT, response_format=fmt) as resp:
                assert resp.headers["content-type"] == {"wav": "audio/wav", "pcm": "audio/pcm",
                                                        "mp3": "audio/mpeg"}[fmt]
                pieces = [piece async for piece in resp.iter_bytes()]
            kept.append(b"".join(pieces))
    header = streamed["wav"][0][:44]
    assert header[:4] == b"RIFF" and int.from_bytes(header[24:28], "little") == 22050
    wav_pcm = np.frombuffer(streamed["wav"][0][44:], np.int16)
    seconds = len(wav_pcm) / 22050
    assert seconds > 2.0 and rms(wav_pcm) > 0.02
    wav_s = np.median([(len(w) - 44) / 2 / 22050 for w in streamed["wav"]])
    pcm_s = np.median([len(p) / 2 / 24000 for p in streamed["pcm"]])
    mp3_s = np.median([len(decode(m, 60)) / 16000 for m in streamed["mp3"]])
    assert pcm_s == pytest.approx(wav_s, rel=0.04)
    assert mp3_s == pytest.approx(wav_s, rel=0.04, abs=0.04 * wav_s + MP3_PADDING_S)

    # ... and back, from WAV and from MP3, in every response format
    wav = write_wav(wav_pcm, 22050)
    result = await client.audio.transcriptions.create(file=("a.wav", wav), model="whisper-1")
    assert "kitchen" in result.text.lower() and "music" in result.text.lower(), result.text
    text = await client.audio.transcriptions.create(
        file=("a.mp3", _mp3(wav_pcm, 22050)), model="whisper-1", response_format="text",
        language="en")
    assert "kitchen" in text.lower() and text.endswith("\n")
    verbose = await client.audio.transcriptions.create(
        file=("a.wav", wav), model="whisper-1", response_format="verbose_json",
        timestamp_granularities=["segment", "word"])
    assert verbose.language == "en" and verbose.duration == pytest.approx(seconds, abs=0.01)
    assert verbose.segments and verbose.segments[-1].end <= seconds + 1.0
    assert any(w.word.lower().startswith("kitchen") for w in verbose.words or [])
    srt = await client.audio.transcriptions.create(file=("a.wav", wav), model="whisper-1",
                                                   response_format="srt")
    assert srt.startswith("1\n00:00:00,000 --> ") and "kitchen" in srt.lower()
    vtt = await client.audio.transcriptions.create(file=("a.wav", wav), model="whisper-1",
                                                   response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")

    # bad input: the status and a message naming the problem
    long_wav = write_wav(np.full(8000 * 40, 0.1, np.float32), 8000)  # 40 s, 640 KB
    cases = [
        (dict(file=("a.mp3", b"ID3 not really an mp3" * 50)), 400, "cannot read the audio"),
        (dict(file=("a.wav", b"")), 400, "empty"),
        (dict(file=("a.wav", long_wav)), 413, "voice.max_utterance_s"),
        (dict(file=("a.wav", bytes(MAX_STT_BYTES + 1))), 413, "voice.max_stt_bytes"),
        (dict(file=("a.wav", wav), response_format="xml"), 400, "response_format"),
        (dict(file=("a.wav", wav), language="xx"), 400, "language"),
        (dict(file=("a.wav", wav), temperature=3.0), 400, "temperature"),
    ]
    for kwargs, status, words in cases:
        with pytest.raises(openai.APIStatusError) as err:
            await client.audio.transcriptions.create(model="whisper-1", **kwargs)
        assert err.value.status_code == status, (words, err.value)
        assert words in err.value.message, err.value.message
    speech_cases = [(dict(input=""), "empty"), (dict(input="x" * 4001), "4001"),
                    (dict(input="hi", voice="en_GB-alan"), "unknown voice"),
                    (dict(input="hi", response_format="ogg"), "response_format"),
                    (dict(input="hi", speed=9), "speed")]
    for kwargs, words in speech_cases:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.audio.speech.create(model="tts-1", **{"voice": "alloy", **kwargs})
        assert words in bad.value.message, bad.value.message
    await client.close()


async def test_audio_api_says_when_voice_is_off(daemon_factory, tmp_path: Path):
    d = await daemon_factory()  # voice off
    client = openai.AsyncOpenAI(base_url=f"{d.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.APIStatusError) as err:
        await client.audio.speech.create(model="tts-1", voice="alloy", input="hi")
    assert err.value.status_code == 503 and "voice.enabled" in err.value.message
    await client.close()


def test_a_wav_written_by_the_server_reads_back():
    assert read_wav(write_wav(np.zeros(10, np.int16), 22050)).rate == 22050
