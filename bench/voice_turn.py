"""Voice turn latency on this box: end of the user's speech -> first byte of reply audio.

Starts a real daemon (voice on, the LLM in-process: llm.mode local, default
models), speaks espeak-ng questions into /api/voice in real time like a
microphone, and reports per turn and at p50/p90 the client-side latency plus
the server's split (endpointing, STT, LLM first token, first sentence,
first-sentence TTS); then ``--barge-ins`` barge-ins: speech 0.5 s into the
audio of a reply asked to be long, timed from the interruption's onset to the
server's ``audio_stop`` (p50/p90/max). Also the STT and TTS real-time
factors measured in this process. Prints JSON.

    .venv/bin/python bench/voice_turn.py [--models DIR] [--rounds 2] [--barge-ins 8] [--no-tools]
    .venv/bin/python bench/voice_turn.py --intents [--rounds 3]

--no-tools runs the agent without tools (tools.enabled: []), so the reply is
the model's plain streamed answer; with tools, the agent's tool prompt and
tool decision come before the first token. --intents asks everyday requests
(INTENT_QUESTIONS) of a daemon with no LLM at all (llm.mode off, as an edge
alone): every reply is an intent's, so the latency is VAD + STT + intent + TTS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import yaml

from appliance.voice.audio import float_to_pcm16, read_wav, to_pipeline

QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What color is the sky?",
    "What is the weather like today?",
    "What is two plus two?",
]
INTENT_QUESTIONS = [
    "What time is it?",
    "What is twelve times seven?",
    "What day is it today?",
    "Set a timer for five minutes.",
    "What is the square root of one hundred forty four?",
]
CHUNK_MS = 30
LEAD_SILENCE_S = 0.3
TAIL_SILENCE_S = 1.5
READY_TIMEOUT_S = 180.0
TURN_TIMEOUT_S = 120.0
#: Asked before each barge-in: a long answer, so it is still playing when interrupted.
LONG_QUESTION = "Tell me a long story about a dragon."
INTERRUPTION = "Stop. Wait a moment."
#: How far into the reply's audio the interruption starts.
BARGE_IN_AFTER_S = 0.5
DEFAULT_MODELS = "/var/cache/hybrid-agent-test/models"


def speak(text: str, workdir: Path) -> bytes:
    """espeak-ng -> 16 kHz mono 16-bit PCM."""
    out = workdir / "q.wav"
    subprocess.run(["espeak-ng", "-w", str(out), text], check=True)
    return float_to_pcm16(to_pipeline(read_wav(out.read_bytes())))


def speech_end_s(pcm: bytes) -> float:
    """End of the last loud 10 ms in ``pcm``: where the speech really stops."""
    x = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    loud = np.nonzero(np.sqrt((frames ** 2).mean(axis=1)) > 0.02)[0]
    return float(loud[-1] + 1) * 0.01


def rtfs(models: Path, workdir: Path) -> dict[str, float]:
    from appliance.hardware import usable_physical_cores
    from appliance.voice.stt import Transcriber
    from appliance.voice.tts import Synthesizer

    stt = Transcriber(models / "whisper-base", threads=usable_physical_cores(), language="en")
    stt.warm_up()
    tts = Synthesizer(models / "piper" / "en_US-joe-medium.onnx")
    stt_t = stt_d = tts_t = tts_d = 0.0
    for q in QUESTIONS:
        samples = np.frombuffer(speak(q, workdir), np.int16).astype(np.float32) / 32768
        t0 = time.perf_counter()
        stt.transcribe(samples)
        stt_t += time.perf_counter() - t0
        stt_d += len(samples) / 16000
        t0 = time.perf_counter()
        audio = tts.synthesize_all(f"Here is an answer to your question. {q}")
        tts_t += time.perf_counter() - t0
        tts_d += len(audio) / tts.sample_rate
    return {"stt_rtf": round(stt_t / stt_d, 3), "tts_rtf": round(tts_t / tts_d, 3)}


class TurnFailed(RuntimeError):
    """The turn got an error or no reply (e.g. misheard into no intent and no LLM)."""


async def turn(url: str, pcm: bytes) -> dict[str, Any]:
    silence = np.zeros(int(16000 * CHUNK_MS / 1000), np.int16).tobytes()
    stream = (silence * int(LEAD_SILENCE_S * 1000 / CHUNK_MS) + pcm
              + silence * int(TAIL_SILENCE_S * 1000 / CHUNK_MS))
    end_at = LEAD_SILENCE_S + speech_end_s(pcm)
    step = 16000 * CHUNK_MS // 1000 * 2
    first_pcm: float | None = None
    result: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/api/voice") as ws:

        async def receive() -> None:
            nonlocal first_pcm
            while True:
                msg = await ws.receive(timeout=TURN_TIMEOUT_S)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    if first_pcm is None:
                        first_pcm = time.monotonic()
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"socket closed: {msg}")
                ev = json.loads(msg.data)
                if ev["type"] in ("transcript", "reply", "error"):
                    result[ev["type"]] = ev
                if ev["type"] == "done" or (ev["type"] == "transcript" and ev.get("final")
                                            and not ev["text"]):
                    return  # an empty transcript: nothing was understood, no reply follows

        receiver = asyncio.create_task(receive())
        start = time.monotonic()
        for i in range(0, len(stream), step):  # real time, like a microphone
            await asyncio.sleep(max(0.0, start + i / 32000 - time.monotonic()))
            await ws.send_bytes(stream[i:i + step])
        await receiver
    heard = result.get("transcript", {}).get("text", "")
    if "error" in result or "reply" not in result:
        raise TurnFailed(f"turn failed (heard {heard!r}): "
                           f"{result.get('error', 'nothing understood')}")
    timings = result["reply"]["timings"]
    return {
        "heard": result["transcript"]["text"],
        "reply": result["reply"]["text"],
        "end_of_speech_to_first_audio_s": round((first_pcm or float("nan"))
                                                - (start + end_at), 3),
        **{k: round(v, 3) for k, v in timings.items()},
    }


async def barge_in(url: str, question: bytes, interrupt: bytes) -> float | None:
    """Interrupt the reply BARGE_IN_AFTER_S into its audio; seconds from the interruption's
    onset to the server's ``audio_stop``, or None when the reply ended before it (no stop)."""
    step = 16000 * CHUNK_MS // 1000 * 2
    silence = np.zeros(step // 2, np.int16).tobytes()
    first_pcm = asyncio.Event()
    stopped_at: float | None = None
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{url}/api/voice") as ws:

        async def receive() -> None:
            nonlocal stopped_at
            dones = 0
            while True:
                msg = await ws.receive(timeout=TURN_TIMEOUT_S)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    first_pcm.set()
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    kind = json.loads(msg.data)["type"]
                    if kind == "audio_stop" and stopped_at is None:
                        stopped_at = time.monotonic()
                        return
                    # Two turns done without a stop: the reply ended before the interruption.
                    dones += kind == "done"
                    if dones == 2:
                        return
                else:
                    raise RuntimeError(f"socket closed: {msg}")

        receiver = asyncio.create_task(receive())
        sent = 0.0
        start = time.monotonic()

        async def send(pcm: bytes) -> None:
            nonlocal sent
            for i in range(0, len(pcm), step):
                if receiver.done():
                    return
                await asyncio.sleep(max(0.0, start + sent - time.monotonic()))
                await ws.send_bytes(pcm[i:i + step])
                sent += len(pcm[i:i + step]) / 32000

        await send(silence * 10 + question)
        while not first_pcm.is_set() and not receiver.done():
            await send(silence)
        await send(silence * int(BARGE_IN_AFTER_S * 1000 / CHUNK_MS))
        onset = start + sent + _onset_s(interrupt)
        await send(interrupt)
        while not receiver.done():
            await send(silence)
        await receiver
    return None if stopped_at is None else stopped_at - onset


def _onset_s(pcm: bytes) -> float:
    x = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    return float(np.nonzero(np.sqrt((frames ** 2).mean(axis=1)) > 0.02)[0][0]) * 0.01


async def llm_load(url: str, streams: int, stop: asyncio.Event) -> dict[str, Any]:
    """``streams`` clients asking the daemon's LLM for 64-token answers, one after another,
    until ``stop``: the box serving the LAN while someone talks to it."""
    tokens = 0
    t0 = time.monotonic()
    body = {"model": "default", "stream": True, "max_tokens": 64, "temperature": 0.7,
            "messages": [{"role": "user", "content": "Write a story about a dragon."}]}

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal tokens
        while not stop.is_set():
            async with http.post(url + "/v1/chat/completions", json=body) as r:
                async for line in r.content:
                    if line.startswith(b"data: {") and b'"content"' in line:
                        tokens += 1

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(http) for _ in range(streams)))
    return {"streams": streams, "tokens_per_s": round(tokens / (time.monotonic() - t0), 1)}


async def bench(models: Path, rounds: int, workdir: Path, tools: bool, barge_ins: int,
                intents: bool = False, load_streams: int = 0,
                llm_settings: dict[str, Any] | None = None,
                voice_settings: dict[str, Any] | None = None) -> dict[str, Any]:
    port = _free_port()
    llm_on = not intents or load_streams > 0
    cfg = daemon_config(workdir, port, models, "bench",
                        llm={"mode": "local" if llm_on else "off", **(llm_settings or {})},
                        voice={"enabled": True, "language": "en", **(voice_settings or {})},
                        world={"mode": "local" if intents else "off"},
                        **({} if tools else {"tools": {"enabled": []}}))
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    log = open(workdir / "daemon.log", "wb")
    argv = [sys.executable, "-m", "appliance.cli", "run", "--config",
            str(workdir / "config.yaml")]
    proc = subprocess.Popen(argv, stdout=log, stderr=log)  # noqa: ASYNC220 - before timing
    url = f"http://127.0.0.1:{port}"
    stop = asyncio.Event()
    loader: asyncio.Task[dict[str, Any]] | None = None
    try:
        await _wait_ready(url, proc)
        questions = [speak(q, workdir) for q in (INTENT_QUESTIONS if intents else QUESTIONS)]
        await turn(url, questions[0])  # warm-up: first-call costs are not the steady state
        if load_streams:
            loader = asyncio.create_task(llm_load(url, load_streams, stop))
        turns, failed = [], []
        for pcm in [pcm for _ in range(rounds) for pcm in questions]:
            try:
                turns.append(await turn(url, pcm))
            except TurnFailed as exc:  # misheard: the answers bench counts those; go on
                failed.append(str(exc))
        interrupt = speak(INTERRUPTION, workdir)
        long_question = speak(LONG_QUESTION, workdir)
        barge = [await barge_in(url, long_question, interrupt)
                 for _ in range(0 if intents else barge_ins)]
        stop.set()
        load = await loader if loader is not None else None
    finally:
        stop.set()
        if loader is not None and not loader.done():
            loader.cancel()
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    keys = ["end_of_speech_to_first_audio_s", "first_audio_s", "endpointing_s", "stt_s",
            "llm_first_token_s", "first_sentence_s", "tts_first_s"]
    summary = {k: {"p50": round(statistics.median([t[k] for t in turns if k in t]), 3),
                   "p90": round(_p90([t[k] for t in turns if k in t]), 3)} for k in keys}
    stops = [b for b in barge if b is not None]
    summary["barge_in_stop_s"] = {"runs": len(barge), "stopped": len(stops),
                                  **({"p50": round(statistics.median(stops), 3),
                                      "p90": round(_p90(stops), 3),
                                      "max": round(max(stops), 3)} if stops else {})}
    return {"turns": turns, "failed_turns": failed,
            "barge_ins_s": [None if b is None else round(b, 3) for b in barge],
            "summary": summary, "llm_load": load}


def add_voice_setting_option(p: argparse.ArgumentParser) -> None:
    """``--voice-setting KEY=VALUE`` (repeatable): voice.* keys for the bench's daemon."""
    p.add_argument("--voice-setting", action="append", default=[], metavar="KEY=VALUE",
                   type=lambda kv: (kv.split("=", 1)[0], yaml.safe_load(kv.split("=", 1)[1])),
                   help="a voice.* config key for the daemon, e.g. stt_min_window_s=5")


def daemon_config(workdir: Path, port: int, models: Path, name: str,
                  **sections: dict[str, Any]) -> dict[str, Any]:
    """A benchmark daemon's config: loopback, no discovery, quiet logs; ``sections`` added."""
    return {
        "node": {"state_dir": str(workdir / "state"), "tier": "mid", "name": name,
                 "models_dir": str(models)},
        "http": {"host": "127.0.0.1", "port": port},
        "logging": {"level": "warning"},
        "discovery": {"enabled": False},
        "security": {"cluster_key_file": str(workdir / "state" / "cluster.key")},
        **sections,
    }


def _p90(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.9 * (len(xs) - 1)))]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}")
            try:
                async with http.get(f"{url}/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError("daemon not ready in time")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=os.environ.get("HYBRID_AGENT_TEST_MODELS",
                                                      DEFAULT_MODELS))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--barge-ins", type=int, default=8, help="interrupted replies to time")
    p.add_argument("--no-tools", action="store_true", help="agent without tools")
    p.add_argument("--intents", action="store_true",
                   help="everyday requests answered by intents, no LLM (llm.mode off)")
    p.add_argument("--llm-load", type=int, default=0, metavar="N",
                   help="N clients streaming from the daemon's LLM during the turns (a mid "
                        "box serving the LAN; with --intents the LLM is then on)")
    p.add_argument("--wait-policy", choices=("adaptive", "active", "passive"),
                   help="llm.wait_policy of the daemon (default: the daemon's)")
    add_voice_setting_option(p)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="voice-bench-") as tmp:
        workdir = Path(tmp)
        factors = rtfs(Path(args.models), workdir)
        result = asyncio.run(bench(Path(args.models), args.rounds, workdir,
                                   tools=not args.no_tools, barge_ins=args.barge_ins,
                                   intents=args.intents, load_streams=args.llm_load,
                                   llm_settings={"wait_policy": args.wait_policy}
                                   if args.wait_policy else None,
                                   voice_settings=dict(args.voice_setting)))
    print(json.dumps({"bench": "voice_turn", "cpus": os.cpu_count(),
                      "load_average": os.getloadavg()[0], "agent_tools": not args.no_tools,
                      "intents_only": args.intents, "wait_policy": args.wait_policy,
                      "voice_settings": dict(args.voice_setting),
                      **factors, **result}, indent=2))


if __name__ == "__main__":
    main()
