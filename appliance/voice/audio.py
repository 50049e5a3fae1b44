"""PCM audio in memory: WAV parsing and writing, downmixing, resampling, levels.

Everything the pipeline handles internally is 16 kHz mono float32 in [-1, 1]
(what Silero and Whisper want); on the wire it is 16-bit little-endian PCM.
Resampling is soxr's (libsoxr): a whole signal at once, or a live stream chunk by
chunk with the filter's state kept between chunks (:class:`StreamResampler`).
"""

from __future__ import annotations

import asyncio
import io
import wave
from dataclasses import dataclass

import numpy as np
import soxr

from appliance.voice.errors import AudioFormatError

#: The rate everything is resampled to before the VAD and STT.
PIPELINE_RATE = 16000
#: Mic chunks: 30 ms, the usual audio frame size of voice pipelines.
CHUNK_MS = 30
#: RMS (full scale 1.0) below which audio counts as silence (about -60 dBFS).
SILENCE_RMS = 0.001
MAX_CHANNELS = 16
MIN_RATE = 1000
MAX_RATE = 384000
#: soxr's "high quality" preset (20-bit precision), its default.
SOXR_QUALITY = "HQ"


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples with their rate."""

    samples: np.ndarray
    rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate if self.rate else 0.0


def read_wav(data: bytes) -> Audio:
    """Parse a PCM WAV (8/16/24/32-bit, any rate, any channel count) into mono float32."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFormatError("not a WAV file (expected a RIFF/WAVE header)")
    try:
        with wave.open(io.BytesIO(data), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"unreadable WAV: {exc} (only integer PCM WAV is supported)") \
            from None
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioFormatError(f"WAV has {channels} channels; 1 to {MAX_CHANNELS} are supported")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioFormatError(f"WAV sample rate {rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
    return Audio(pcm_to_mono(frames, width, channels), rate)


def pcm_to_mono(frames: bytes, width: int, channels: int) -> np.ndarray:
    """Interleaved little-endian PCM (``width`` bytes a sample) -> mono float32; a trailing
    partial frame is dropped."""
    samples = _pcm_to_float(frames, width)
    usable = len(samples) - len(samples) % channels
    return samples[:usable].reshape(-1, channels).mean(axis=1, dtype=np.float32)


def write_wav(samples: np.ndarray, rate: int) -> bytes:
    """Mono WAV bytes, 16-bit, from float32 samples or int16 samples."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(to_int16(samples).tobytes())
    return buf.getvalue()


def to_int16(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.int16:
        return samples
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def pcm16_to_float(data: bytes) -> np.ndarray:
    """16-bit little-endian mono PCM bytes (an odd trailing byte is dropped) -> float32."""
    return _pcm_to_float(data[: len(data) - len(data) % 2], 2)


def float_to_pcm16(samples: np.ndarray) -> bytes:
    return to_int16(samples).astype("<i2", copy=False).tobytes()


def resample(samples: np.ndarray, rate: int, target: int = PIPELINE_RATE) -> np.ndarray:
    """A whole mono float32 signal at ``target`` Hz (for a stream, :class:`StreamResampler`)."""
    if rate == target or len(samples) == 0:
        return samples.astype(np.float32, copy=False)
    return soxr.resample(samples.astype(np.float32, copy=False), rate, target,
                         quality=SOXR_QUALITY)


class StreamResampler:
    """One stream of 16-bit mono PCM at ``rate`` -> 16-bit PCM at ``target``, chunk by chunk.

    The filter's state carries over from one chunk to the next, so chunk edges add no
    error (a tone resampled in 30 ms chunks keeps its SNR). Output comes as it is ready:
    the first pieces lag a few ms and pieces vary in length. One instance per stream,
    fed in order; :meth:`feed` runs the work off the event loop.
    """

    def __init__(self, rate: int, target: int = PIPELINE_RATE) -> None:
        self.rate = rate
        self.target = target
        self._stream = soxr.ResampleStream(rate, target, 1, dtype="int16", quality=SOXR_QUALITY)

    def process(self, pcm: bytes) -> bytes:
        """The resampled PCM for the next piece of the stream (blocking: a worker thread's)."""
        samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], "<i2")
        return self._stream.resample_chunk(samples).astype("<i2", copy=False).tobytes()

    def flush(self) -> bytes:
        """What the filter still holds (the stream's last few ms); then a new stream begins."""
        tail = self._stream.resample_chunk(np.zeros(0, np.int16), last=True)
        self._stream.clear()
        return tail.astype("<i2", copy=False).tobytes()

    async def feed(self, pcm: bytes) -> bytes:
        """:meth:`process` in a worker thread; await each before feeding the next."""
        return await asyncio.to_thread(self.process, pcm)

    async def end(self) -> bytes:
        """:meth:`flush` in a worker thread."""
        return await asyncio.to_thread(self.flush)


def to_pipeline(audio: Audio) -> np.ndarray:
    """16 kHz mono float32, as the VAD and STT want it."""
    return resample(audio.samples, audio.rate, PIPELINE_RATE)


def rms(samples: np.ndarray) -> float:
    if len(samples) == 0:
        return 0.0
    x = samples.astype(np.float32) / (32768.0 if samples.dtype == np.int16 else 1.0)
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def is_silent(samples: np.ndarray) -> bool:
    return rms(samples) < SILENCE_RMS


def chunk_bytes(rate: int = PIPELINE_RATE, ms: int = CHUNK_MS) -> int:
    """Bytes of one 16-bit mono chunk of ``ms`` milliseconds."""
    return rate * ms // 1000 * 2


# ---------------------------------------------------------------- private


def _pcm_to_float(frames: bytes, width: int) -> np.ndarray:
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(frames, np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(frames, "<i2").astype(np.float32) / 32768.0
    if width == 3:
        raw = np.frombuffer(frames[: len(frames) - len(frames) % 3], np.uint8).reshape(-1, 3)
        ints = (raw[:, 0].astype(np.int32) | (raw[:, 1].astype(np.int32) << 8)
                | (raw[:, 2].astype(np.int32) << 16))
        ints = np.where(ints & 0x800000, ints - 0x1000000, ints)
        return ints.astype(np.float32) / 8388608.0
    if width == 4:
        return (np.frombuffer(frames[: len(frames) - len(frames) % 4], "<i4")
                .astype(np.float32) / 2147483648.0)
    raise AudioFormatError(f"WAV sample width {width * 8} bits is not supported")
