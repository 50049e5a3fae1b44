"""Our Wyoming server against the reference servers Home Assistant users run, on this box.

    .venv/bin/python bench/wyoming.py [--models DIR] [--anchors DIR] [--rounds 3]
                                      [--wyoming-bench]

The anchors are wyoming-faster-whisper and wyoming-piper from PyPI, each in its
own venv under ``--anchors`` (default /var/cache/hybrid-agent-bench/{whisper,piper};
``pip install wyoming-faster-whisper`` / ``wyoming-piper`` there), started as
their users start them, with their own defaults, on the SAME model files as ours
(``--model <models>/whisper-base``, ``--voice en_US-joe-medium --data-dir
<models>/piper``; ``--local-files-only`` because this box has no model hub).
Each server runs alone on the box; rounds interleave ours and theirs (the order
flips every round) and the ratios come from this one run, with the load average.

Measured, with the `wyoming` package's client, as Home Assistant talks:

- STT: espeak-ng commands at 16 kHz 16-bit mono (HA's format) sent as fast as
  the socket takes them; latency = ``audio-stop`` sent -> ``transcript``; and
  the share of reference words heard (quality).
- TTS: ``synthesize`` of typical answers: time to the first ``audio-chunk`` and
  to ``audio-stop``; and streaming synthesis (``synthesize-start``, the text
  a word at a time as an LLM writes it, ``synthesize-stop``): first audio
  chunk and ``synthesize-stopped``.

``--wyoming-bench`` also runs the third-party ``wyoming-bench`` (from the
``wbench`` venv under ``--anchors``) against both sides and keeps its output.
Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

# This file is called wyoming.py: drop its own folder from the path, or `import wyoming`
# below would import this script instead of the package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import yaml  # noqa: E402
from wyoming.asr import Transcribe  # noqa: E402
from wyoming.audio import AudioChunk, AudioStart, AudioStop  # noqa: E402
from wyoming.client import AsyncTcpClient  # noqa: E402
from wyoming.event import Event  # noqa: E402
from wyoming.info import Describe  # noqa: E402
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop  # noqa: E402

COMMANDS = [
    "Turn on the kitchen lights.",
    "What is the weather like tomorrow?",
    "Set a timer for ten minutes.",
    "Play some relaxing music in the living room.",
    "What time is it?",
]
ANSWERS = [
    "The kitchen lights are on.",
    "Tomorrow will be sunny with a high of twenty two degrees. There is a light breeze "
    "from the west in the afternoon.",
    "Your timer for ten minutes has started. I will tell you when it is done.",
]
CHUNK_SAMPLES = 1024  # what Home Assistant and wyoming-piper use
#: Each answer is synthesised this often per round (cheap, and noisy on a shared box).
TTS_REPEATS = 3
EVENT_TIMEOUT_S = 120.0
START_TIMEOUT_S = 300.0
DEFAULT_MODELS = "/var/cache/hybrid-agent-test/models"
DEFAULT_ANCHORS = "/var/cache/hybrid-agent-bench"
OUR_PORT, STT_PORT, TTS_PORT = 10751, 10752, 10753


# ---------------------------------------------------------------- servers


class Server:
    """A server process started for a round and stopped after it."""

    def __init__(self, name: str, argv: list[str], port: int, log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.port, self.log_path = name, argv, port, log
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Server:
        self._log = open(self.log_path, "ab")
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # its port answering `describe` is when Home Assistant could use it
            if self.proc.returncode is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log_path}")
            try:
                async with AsyncTcpClient("127.0.0.1", self.port) as client:
                    await client.write_event(Describe().event())
                    if await asyncio.wait_for(client.read_event(), 5):
                        return self
            except (OSError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer on port {self.port}")
            await asyncio.sleep(0.2)

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        self._log.close()


def ours(models: Path, work: Path) -> Server:
    cfg = {"node": {"state_dir": str(work / "state"), "models_dir": str(models),
                    "name": "bench", "tier": "edge"},
           "http": {"host": "127.0.0.1", "port": OUR_PORT + 100},
           "discovery": {"enabled": False}, "llm": {"mode": "off"}, "world": {"mode": "off"},
           "voice": {"enabled": True},
           "wyoming": {"enabled": True, "host": "127.0.0.1", "port": OUR_PORT},
           "security": {"cluster_key_file": str(work / "cluster.key")}}
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    return Server("hybrid-agent", [sys.executable, "-m", "appliance.cli", "run", "--config",
                                   str(path)], OUR_PORT, work / "ours.log", env)


def faster_whisper(anchors: Path, models: Path, work: Path) -> Server:
    return Server("wyoming-faster-whisper", [
        str(anchors / "whisper/bin/wyoming-faster-whisper"), "--uri",
        f"tcp://127.0.0.1:{STT_PORT}", "--model", str(models / "whisper-base"),
        "--data-dir", str(work / "whisper-data"), "--local-files-only"],
        STT_PORT, work / "whisper.log")


def piper(anchors: Path, models: Path, work: Path) -> Server:
    return Server("wyoming-piper", [
        str(anchors / "piper/bin/wyoming-piper"), "--uri", f"tcp://127.0.0.1:{TTS_PORT}",
        "--voice", "en_US-joe-medium", "--data-dir", str(models / "piper")],
        TTS_PORT, work / "piper.log")


# ---------------------------------------------------------------- measurements


async def read(client: AsyncTcpClient) -> Event:
    event = await asyncio.wait_for(client.read_event(), EVENT_TIMEOUT_S)
    if event is None:
        raise RuntimeError("the server closed the connection")
    if event.type == "error":
        raise RuntimeError(f"server error: {event.data}")
    return event


async def stt_once(port: int, pcm: bytes) -> tuple[float, str]:
    """audio-stop sent -> transcript received, and the text."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for i in range(0, len(pcm), CHUNK_SAMPLES * 2):
            await client.write_event(AudioChunk(rate=16000, width=2, channels=1,
                                                audio=pcm[i:i + CHUNK_SAMPLES * 2]).event())
        await client.write_event(AudioStop().event())
        sent = time.perf_counter()
        while True:
            event = await read(client)
            if event.type == "transcript":
                return time.perf_counter() - sent, str(event.data.get("text", ""))


async def tts_once(port: int, text: str, streaming: bool) -> tuple[float, float, int]:
    """(first audio-chunk, end of audio, bytes) after the request's first byte."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        started = time.perf_counter()
        if streaming:
            await client.write_event(SynthesizeStart().event())
            for word in re.findall(r"\S+\s*", text):  # as an LLM writes it
                await client.write_event(SynthesizeChunk(text=word).event())
            await client.write_event(Synthesize(text=text).event())  # HA sends it too
            await client.write_event(SynthesizeStop().event())
        else:
            await client.write_event(Synthesize(text=text).event())
        first: float | None = None
        size = 0
        end_type = "synthesize-stopped" if streaming else "audio-stop"
        while True:
            event = await read(client)
            if event.type == "audio-chunk":
                first = first or time.perf_counter() - started
                size += len(event.payload or b"")
            elif event.type == end_type:
                assert first is not None, "no audio"
                return first, time.perf_counter() - started, size


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("10", "ten"))


def heard(reference: str, text: str) -> float:
    ref, got = words(reference), set(words(text))
    return sum(w in got for w in ref) / len(ref)


async def measure_stt(port: int, clips: dict[str, bytes], out: dict[str, list[float]]) -> None:
    await stt_once(port, next(iter(clips.values())))  # warm-up, untimed
    for text, pcm in clips.items():
        latency, said = await stt_once(port, pcm)
        out["stt_s"].append(latency)
        out["stt_heard"].append(heard(text, said))


async def measure_tts(port: int, out: dict[str, list[float]]) -> None:
    await tts_once(port, ANSWERS[0], streaming=False)  # warm-up, untimed
    for i, text in [*enumerate(ANSWERS)] * TTS_REPEATS:
        for streaming in (False, True):
            first, total, _ = await tts_once(port, text, streaming)
            key = "tts_stream" if streaming else "tts"
            out[f"{key}_first_s"].append(first)
            out[f"{key}_total_s"].append(total)
            out[f"{key}_first_s_answer{i + 1}"].append(first)


def speak(text: str, work: Path) -> bytes:
    """espeak-ng -> 16 kHz 16-bit mono PCM, with a little silence around it."""
    raw, out = work / "espeak.wav", work / "clip.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out),
                    "pad", "0.2", "0.3"], check=True)
    with wave.open(str(out)) as w:
        return w.readframes(w.getnframes())


def summary(values: dict[str, list[float]]) -> dict[str, float]:
    return {k: round(statistics.median(v), 4) for k, v in values.items() if v}


def wyoming_bench(anchors: Path, work: Path, servers: list[str], clips: dict[str, bytes],
                  kind: str) -> str:
    exe = anchors / "wbench/bin/wyoming-bench"
    if kind == "stt":
        corpus = work / "corpus"
        corpus.mkdir(exist_ok=True)
        for i, (text, pcm) in enumerate(clips.items()):
            with wave.open(str(corpus / f"c{i:02d}.wav"), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(pcm)
            (corpus / f"c{i:02d}.txt").write_text(text)
        argv = [str(exe), "stt", "--corpus", str(corpus), "--config", '{"language":"en"}',
                "--mode", "non_streaming", "--rounds", "1", *servers]
    else:
        argv = [str(exe), "tts", "--texts", *ANSWERS, "--rounds", "1", *servers]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    return proc.stdout + proc.stderr


# ---------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict[str, Any]:
    models, anchors = Path(args.models), Path(args.anchors)
    work = Path(tempfile.mkdtemp(prefix="bench-wyoming-"))
    (work / "whisper-data").mkdir()
    clips = {text: speak(text, work) for text in COMMANDS}
    sides: dict[str, dict[str, list[float]]] = {
        side: collections.defaultdict(list) for side in ("ours", "theirs")}
    load_before = os.getloadavg()
    for round_no in range(args.rounds):
        order = ("ours", "theirs") if round_no % 2 == 0 else ("theirs", "ours")
        for side in order:
            if side == "ours":
                async with ours(models, work) as server:
                    await measure_stt(server.port, clips, sides["ours"])
                    await measure_tts(server.port, sides["ours"])
            else:
                async with faster_whisper(anchors, models, work) as server:
                    await measure_stt(server.port, clips, sides["theirs"])
                async with piper(anchors, models, work) as server:
                    await measure_tts(server.port, sides["theirs"])
    result: dict[str, Any] = {
        "rounds": args.rounds, "commands": len(COMMANDS), "answers": len(ANSWERS),
        "cpus": os.cpu_count(), "loadavg_before": load_before,
        "ours": summary(sides["ours"]), "theirs": summary(sides["theirs"]),
    }
    a, b = result["ours"], result["theirs"]
    result["ratio_ours_to_theirs"] = {k: round(a[k] / b[k], 3) for k in a
                                      if k != "stt_heard" and b.get(k)}
    result["loadavg_after"] = os.getloadavg()
    if args.wyoming_bench:
        third: dict[str, str] = {}
        async with ours(models, work) as server:
            third["stt_ours"] = wyoming_bench(anchors, work, [f"127.0.0.1:{server.port}"],
                                              clips, "stt")
            third["tts_ours"] = wyoming_bench(anchors, work, [f"127.0.0.1:{server.port}"],
                                              clips, "tts")
        async with faster_whisper(anchors, models, work) as server:
            third["stt_theirs"] = wyoming_bench(anchors, work, [f"127.0.0.1:{server.port}"],
                                                clips, "stt")
        async with piper(anchors, models, work) as server:
            third["tts_theirs"] = wyoming_bench(anchors, work, [f"127.0.0.1:{server.port}"],
                                                clips, "tts")
        result["wyoming_bench"] = third
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help="the default models")
    parser.add_argument("--anchors", default=DEFAULT_ANCHORS,
                        help="where the anchors' venvs (whisper, piper, wbench) are")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--wyoming-bench", action="store_true",
                        help="also run the third-party wyoming-bench on both sides")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
