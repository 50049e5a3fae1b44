"""Resampling a live stream: the FFT resampler per chunk (what voice/audio.py did) against
soxr's stream resampler (what it does now); prints JSON.

A 1234.5 Hz tone, 48 -> 16 kHz in 30 ms chunks of 16-bit PCM, as a 48 kHz microphone
delivers it. Quality: SNR in dB against the ideal tone (the whole signal, from the first
sample). Speed: microseconds per chunk, both sides interleaved round by round so the
box's load hits them alike, and their ratio. Run: ``.venv/bin/python bench/resample.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.voice.audio import StreamResampler, float_to_pcm16, pcm16_to_float
from tests.voice.test_audio import _fft_resample

HZ = 1234.5
RATE = 48000
TARGET = 16000
CHUNK_MS = 30


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0, help="stream length per round")
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    t = np.arange(int(RATE * args.seconds)) / RATE
    pcm = float_to_pcm16((0.5 * np.sin(2 * np.pi * HZ * t)).astype(np.float32))
    step = RATE * CHUNK_MS // 1000 * 2
    chunks = [pcm[i:i + step] for i in range(0, len(pcm), step)]
    times: dict[str, list[float]] = {"fft_per_chunk": [], "soxr_stream": []}
    outs: dict[str, bytes] = {}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        outs["fft_per_chunk"] = b"".join(
            float_to_pcm16(_fft_resample(pcm16_to_float(c), RATE, TARGET)) for c in chunks)
        t1 = time.perf_counter()
        stream = StreamResampler(RATE, TARGET)
        outs["soxr_stream"] = b"".join(stream.process(c) for c in chunks)
        t2 = time.perf_counter()
        times["fft_per_chunk"].append((t1 - t0) / len(chunks) * 1e6)
        times["soxr_stream"].append((t2 - t1) / len(chunks) * 1e6)
    us = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({
        "tone_hz": HZ, "rate": RATE, "target": TARGET, "chunk_ms": CHUNK_MS,
        "snr_db": {k: round(_snr_db(v), 1) for k, v in outs.items()},
        "us_per_chunk": {k: round(v, 1) for k, v in us.items()},
        "speedup": round(us["fft_per_chunk"] / us["soxr_stream"], 1),
        "loadavg": os.getloadavg()[0],
    }, indent=2))


def _snr_db(out: bytes) -> float:
    y = pcm16_to_float(out).astype(np.float64)
    ideal = 0.5 * np.sin(2 * np.pi * HZ * np.arange(len(y)) / TARGET)
    return float(10 * np.log10(np.sum(ideal ** 2) / np.sum((y - ideal) ** 2)))


if __name__ == "__main__":
    main()
