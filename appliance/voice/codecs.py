"""Compressed audio in and out (mp3, ogg/opus, m4a/aac, flac, webm...) with PyAV, bounded.

PyAV comes with faster-whisper and carries its own FFmpeg. Both directions
block: call them from a worker thread. Decoding stops as soon as the audio
passes ``max_s`` seconds, so a small file that decompresses into hours of
audio costs no more than the bound.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from appliance.voice.audio import PIPELINE_RATE
from appliance.voice.errors import AudioFormatError, AudioTooLong

#: Encoders per OpenAI ``response_format``: (container, codec, sample rate or 0 = the voice's).
ENCODINGS = {"mp3": ("mp3", "libmp3lame", 0), "opus": ("ogg", "libopus", 48000),
             "aac": ("adts", "aac", 0), "flac": ("flac", "flac", 0)}
#: Bit rate of the lossy encodings: plenty for one speaking voice.
BIT_RATE = 64000


def decode(data: bytes, max_s: float) -> np.ndarray:
    """Any audio file PyAV reads -> 16 kHz mono float32; AudioFormatError saying why not."""
    import av

    try:
        container = av.open(io.BytesIO(data), "r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise AudioFormatError(f"cannot read the audio file ({_reason(exc)}); send WAV, MP3, "
                               "OGG/Opus, M4A/AAC, FLAC or WebM") from None
    with container:
        if not container.streams.audio:
            raise AudioFormatError("the file has no audio stream")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=PIPELINE_RATE)
        limit = int(max_s * PIPELINE_RATE)
        parts: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    part = out.to_ndarray().reshape(-1)
                    total += len(part)
                    if total > limit:
                        raise AudioTooLong(f"audio is longer than {max_s:.0f} s; at most "
                                           f"{max_s:.0f} s are accepted (voice.max_utterance_s)")
                    parts.append(part)
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except (av.FFmpegError, ValueError) as exc:
            raise AudioFormatError(f"the audio file is damaged ({_reason(exc)})") from None
    if not parts:
        return np.zeros(0, np.float32)
    return np.concatenate(parts).astype(np.float32) / 32768.0


class Encoder:
    """int16 mono PCM in, pieces of one compressed stream out (as they become ready)."""

    def __init__(self, fmt: str, rate: int) -> None:
        import av

        container_format, codec, out_rate = ENCODINGS[fmt]
        self._out = _Sink()
        self._container: Any = av.open(self._out, "w", format=container_format)
        self.rate = out_rate or rate
        stream: Any = self._container.add_stream(codec, rate=self.rate, layout="mono")
        if codec != "flac":
            stream.bit_rate = BIT_RATE
        self._stream = stream
        self._resampler = av.AudioResampler(format=stream.format.name, layout="mono",
                                            rate=self.rate)
        self._in_rate = rate

    def encode(self, pcm: np.ndarray) -> bytes:
        """Encode int16 ``pcm`` at the input rate; the bytes finished so far."""
        import av

        frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16).reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate = self._in_rate
        for resampled in self._resampler.resample(frame):
            for packet in self._stream.encode(resampled):
                self._container.mux(packet)
        return self._out.take()

    def finish(self) -> bytes:
        """Flush the encoder and close the stream; the last bytes."""
        for resampled in self._resampler.resample(None):
            for packet in self._stream.encode(resampled):
                self._container.mux(packet)
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._out.take()


class _Sink:
    """A write-only, unseekable file for the muxer: it writes the stream front to back."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "strerror", None) or exc)[:200]
