"""WAV parsing, downmixing, resampling, silence, sentences, the playback clock, ALSA commands."""

from __future__ import annotations

import asyncio
import contextlib
import io
import wave

import numpy as np
import pytest

from appliance.voice import alsa
from appliance.voice.audio import (
    StreamResampler,
    float_to_pcm16,
    is_silent,
    pcm16_to_float,
    read_wav,
    resample,
    to_pipeline,
    write_wav,
)
from appliance.voice.errors import AudioDeviceError, AudioFormatError
from appliance.voice.pipeline import PlaybackClock
from appliance.voice.sentences import SentenceSplitter

#: ALSA's null device answers in milliseconds; anything near this bound is a hang.
ALSA_TEST_BOUND_S = 30.0


def _wav(samples: np.ndarray, rate: int, channels: int, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def _tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_stereo_44k_is_downmixed_and_resampled_to_16k_mono() -> None:
    left = (_tone(44100, 1.0) * 32767).astype(np.int16)
    stereo = np.stack([left, left], axis=1).reshape(-1)
    audio = read_wav(_wav(stereo, 44100, 2))
    assert audio.rate == 44100 and len(audio.samples) == 44100
    out = to_pipeline(audio)
    assert len(out) == 16000
    # The tone survives: its energy is still there after resampling.
    assert 0.3 < float(np.sqrt(np.mean(out[100:-100] ** 2))) < 0.4


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_integer_sample_width_reads_to_the_same_signal(width: int) -> None:
    x = _tone(8000, 0.1)
    if width == 1:
        raw = ((x * 127) + 128).astype(np.uint8)
        data = _wav(raw, 8000, 1, 1)
    elif width == 2:
        data = _wav((x * 32767).astype("<i2"), 8000, 1, 2)
    elif width == 3:
        ints = (x * 8388607).astype(np.int32)
        raw = np.stack([(ints >> s) & 0xFF for s in (0, 8, 16)], axis=1).astype(np.uint8)
        data = _wav(raw.reshape(-1), 8000, 1, 3)
    else:
        data = _wav((x * 2147483647).astype("<i4"), 8000, 1, 4)
    audio = read_wav(data)
    assert np.max(np.abs(audio.samples - x)) < 0.02


@pytest.mark.parametrize("data, words", [
    (b"", "not a WAV"),
    (b"ID3\x04 this is an mp3", "not a WAV"),
    (b"RIFF\x00\x00\x00\x00WAVEjunk", "unreadable WAV"),
])
def test_bad_wavs_are_named(data: bytes, words: str) -> None:
    with pytest.raises(AudioFormatError, match=words):
        read_wav(data)


def test_silence_and_write_wav_round_trip() -> None:
    assert is_silent(np.zeros(1600, np.float32))
    assert not is_silent(_tone(16000, 0.1))
    data = write_wav(_tone(22050, 0.5), 22050)
    back = read_wav(data)
    assert back.rate == 22050 and abs(back.duration_s - 0.5) < 0.001
    assert len(pcm16_to_float(b"\x01\x00\x02")) == 1  # an odd trailing byte is dropped
    assert len(resample(np.zeros(0, np.float32), 44100)) == 0


def test_a_tone_resampled_in_30_ms_chunks_keeps_its_quality() -> None:
    """48 -> 16 kHz in 30 ms chunks, as a microphone delivers them. Each chunk resampled on
    its own leaves an error at every chunk edge: the FFT resampler this replaced reached
    46 dB against the ideal tone, soxr without its state even less. The stream resampler
    keeps the filter's state across chunks: about 68 dB, and no sample is lost."""
    hz, rate, seconds = 1234.5, 48000, 2.0
    pcm = float_to_pcm16(_tone(rate, seconds, hz))
    step = rate * 30 // 1000 * 2
    chunks = [pcm[i:i + step] for i in range(0, len(pcm), step)]

    def snr_db(out: bytes) -> float:
        y = pcm16_to_float(out).astype(np.float64)
        ideal = 0.5 * np.sin(2 * np.pi * hz * np.arange(len(y)) / 16000)
        return float(10 * np.log10(np.sum(ideal ** 2) / np.sum((y - ideal) ** 2)))

    stream = StreamResampler(rate)
    streamed = b"".join(stream.process(c) for c in chunks)
    tail = stream.flush()
    assert len(streamed + tail) == 2 * int(16000 * seconds)
    alone = b"".join(float_to_pcm16(resample(pcm16_to_float(c), rate)) for c in chunks)
    before = b"".join(float_to_pcm16(_fft_resample(pcm16_to_float(c), rate, 16000))
                      for c in chunks)
    assert snr_db(streamed) > 65
    assert snr_db(before) < 50 and snr_db(alone) < 50
    assert snr_db(streamed) - snr_db(before) > 15


def _fft_resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """The resampler voice/audio.py had before soxr: FFT low-pass, linear interpolation."""
    spectrum = np.fft.rfft(samples)
    spectrum[np.fft.rfftfreq(len(samples), 1.0 / rate) > 0.45 * target] = 0
    smooth = np.fft.irfft(spectrum, n=len(samples))
    t_out = np.arange(round(len(samples) * target / rate)) * (rate / target)
    return np.interp(t_out, np.arange(len(samples)), smooth).astype(np.float32)


def test_sentences_are_cut_as_tokens_arrive() -> None:
    s = SentenceSplitter()
    out: list[str] = []
    for delta in ["Par", "is is the capital", " of France. It has ", "about two million",
                  " people! Anything else?", " Bye"]:
        out += s.feed(delta)
    assert out == ["Paris is the capital of France.", "It has about two million people!",
                   "Anything else?"]
    assert s.flush() == ["Bye"]
    long_run = SentenceSplitter().feed("word " * 100)
    assert long_run and all(len(x) <= 200 for x in long_run)


def test_the_first_piece_may_end_at_a_clause_so_speech_starts_sooner() -> None:
    s = SentenceSplitter()
    assert s.feed("Well, ") == []  # too short to speak alone
    assert s.feed("the sky is often described as blue, but ") == [
        "Well, the sky is often described as blue,"]
    # Later pieces wait for the sentence end unless the clause is long.
    assert s.feed("at sunset it turns red, orange and ") == []
    assert s.feed("pink. Then") == ["but at sunset it turns red, orange and pink."]
    assert s.flush() == ["Then"]


def test_the_first_piece_may_end_after_a_few_words_as_tokens_arrive() -> None:
    s = SentenceSplitter()
    out: list[str] = []
    for delta in ["The", " answer", " is", " four", " because", " two", " plus", " two",
                  " makes", " four.", " Bye"]:
        out += s.feed(delta)
        if not out:
            assert delta != " because"  # cut as soon as the fourth word is complete
    assert out == ["The answer is four", "because two plus two makes four."]
    assert s.flush() == ["Bye"]
    # Only the first piece: later ones still wait for a sentence end.
    later = SentenceSplitter().feed("Hello there. one two three four five six ")
    assert later == ["Hello there."]


def test_playback_clock_knows_what_was_heard_when_stopped() -> None:
    clock = PlaybackClock()
    clock.add("One two three four.", 2.0, now=10.0)
    clock.add("Five six.", 1.0, now=10.5)   # queued behind the first: plays 12.0-13.0
    assert clock.playing(12.5) and not clock.playing(13.0)
    assert clock.spoken_at(11.0) == ("One two", True)
    assert clock.spoken_at(12.6) == ("One two three four. Five", True)
    assert clock.spoken_at(13.0) == ("One two three four. Five six.", False)


def test_alsa_commands_are_raw_s16_mono_at_the_rate() -> None:
    assert alsa.arecord_argv("hw:1,0", 48000) == [
        "arecord", "-q", "-D", "hw:1,0", "-t", "raw", "-f", "S16_LE", "-c", "1", "-r", "48000"]
    assert alsa.aplay_argv("default", 22050)[-2:] == ["-r", "22050"]
    assert not alsa.enabled("none") and not alsa.enabled("") and alsa.enabled("default")


async def test_aplay_and_arecord_run_on_alsas_null_device() -> None:
    async with asyncio.timeout(ALSA_TEST_BOUND_S):
        await _null_device_round_trip()


async def _null_device_round_trip() -> None:
    out = alsa.AplayOutput("null")
    await out.play(np.zeros(2205, np.int16).tobytes(), 22050)
    assert out.bytes_written == 4410
    assert await out.finish() == 0  # played it all and exited cleanly at the end of input
    refused = alsa.AplayOutput("no-such-device")
    with contextlib.suppress(AudioDeviceError):  # it may have exited before the write
        await refused.play(np.zeros(2205, np.int16).tobytes(), 22050)
    assert await refused.finish() == 1  # what test_local_audio's 0 tells apart
    source = alsa.ArecordSource("null", 48000)
    chunks = []
    async with contextlib.aclosing(source.chunks()) as stream:  # closes arecord on break
        async for chunk in stream:
            chunks.append(chunk)
            if len(chunks) == 3:
                break
    # 30 ms at 48 kHz captured, resampled to 16 kHz 16-bit mono: 480 samples, 960 bytes.
    assert [len(c) for c in chunks] == [960, 960, 960]
    bad = alsa.AplayOutput("no-such-device")
    with pytest.raises(AudioDeviceError, match="no-such-device"):
        for _ in range(50):  # aplay exits as soon as it fails to open the device
            await bad.play(np.zeros(22050, np.int16).tobytes(), 22050)
            await asyncio.sleep(0.05)
    await bad.stop()
