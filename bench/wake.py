"""Wake words on this box: cost, detection, false accepts, latency; prints JSON.

Per engine (cascade, microwakeword, openwakeword), each in its own process:
- cost: CPU of the detector (all its words) on 16 kHz audio fed in 30 ms chunks
  like a microphone, over silence and over continuous non-wake speech, as % of
  one core; and the RSS its libraries, models and state add to the process;
- detection: per word, the share of wake phrases detected, made by piper (the
  default voice at three speeds and three pitches), espeak-ng (eight voices at
  two speeds) and flite (four voices), alone and in a sentence, clean and with
  pink, brown and babble noise at 10 dB SNR (bench/wake_corpus.py);
- false accepts: per word, detections over ``--hours`` of non-wake speech (half
  of it in noise) and noise, per hour;
- decision latency: stream time from the end of a phrase said alone to the
  detection (p50/p90);
- wake over echo: okay_nabu detected while the default voice's speech (our own
  reply, heard back without echo cancellation) plays 6-20 dB below it;
- cascade: how many candidates openWakeWord checked per hour of non-wake audio,
  and the decision latency of the phrases only its check accepted.
Then, with the default engine in a real daemon over /api/voice in hands-free
mode, streamed in real time: the daemon's CPU while the client streams silence
and then non-wake speech; end of the wake word -> ``wake`` event (p50/p90);
and the whole turn "Okay Nabu, what time is it?": end of speech -> first reply
audio, with the server's split, as in bench/voice_turn.py (the LLM in-process).

    .venv/bin/python bench/wake.py [--hours 1.0] [--short]
        [--engines cascade,microwakeword,openwakeword]

The speech is synthesized once and cached under $HYBRID_AGENT_TEST_CACHE/wake.
--short (one word, four voices, a minute of non-wake audio, a few seconds of
streaming) keeps the bench working in `make test`; the full run takes about an
hour on a 2-core box the first time (synthesis), then minutes per engine.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from voice_turn import _free_port, _p90, _wait_ready, daemon_config
from wake_corpus import (
    DEFAULT_CACHE,
    DEFAULT_MODELS,
    PHRASES,
    RATE,
    Clip,
    Corpus,
    mix,
    read_pcm,
    speech_end_s,
)

CHUNK = RATE * 30 // 1000 * 2
ENGINES = ("cascade", "microwakeword", "openwakeword")
DEFAULT_WORDS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")
COST_S, SHORT_COST_S = 120.0, 10.0
STREAM_S, SHORT_STREAM_S = 30.0, 4.0
WAKES, SHORT_WAKES = 10, 2
TURNS, SHORT_TURNS = 3, 1
TURN_TIMEOUT_S = 120.0
TURN_TEXT = "{p}, what time is it?"
#: Sensitivities (voice.wake_sensitivity) tried for the default engine.
SWEEP = (0.6, 0.7, 0.8)
#: How far below the wake phrase our own reply's echo is, for the barge-in measurement.
ECHO_DB = (6.0, 10.0, 15.0, 20.0)
#: Silence between two clips fed to one detector.
GAP_S = 1.5


# ---------------------------------------------------------------- one engine (a subprocess)


def worker(engine: str, words: list[str], cache: Path, models: Path, hours: float,
           short: bool) -> dict[str, Any]:
    """Everything measured of one engine, in this process alone."""
    from appliance.voice.wake import describe, open_detector

    corpus = Corpus(cache, models, short=short)
    negatives = corpus.negatives(hours)
    speech = np.concatenate([read_pcm(p) for p in negatives[:3]]).tobytes()
    rss0 = _rss_mb()
    cost_s = SHORT_COST_S if short else COST_S
    detector = open_detector(engine, words)
    silence_cpu = _cpu_per_audio_s(detector, bytes(int(cost_s * RATE) * 2))
    speech_cpu = _cpu_per_audio_s(detector, speech[: int(cost_s * RATE) * 2])
    added = _rss_mb() - rss0
    detector.close()
    result: dict[str, Any] = {
        **describe(engine),
        "cpu_pct_of_one_core": {"silence": round(100 * silence_cpu, 2),
                                "speech": round(100 * speech_cpu, 2)},
        "added_rss_mb": round(added, 1),
        "rss_before_mb": round(rss0, 1),
        "words": {},
    }
    result["wake_over_echo"] = _over_echo(engine, corpus, negatives)
    fa = _false_accepts(engine, words, negatives)
    for word in words:
        clips = corpus.positives(word)
        result["words"][word] = {**_detection(engine, word, clips), **fa[word]}
    if engine == "microwakeword" and not short:
        # The default engine's trade-off: detection and false accepts per sensitivity.
        result["sensitivity_sweep"] = {}
        for level in SWEEP:
            fa = _false_accepts(engine, words, negatives, level)
            result["sensitivity_sweep"][str(level)] = {
                w: {"detection_rate": _detection(engine, w, corpus.positives(w),
                                                 level)["detection_rate"],
                    "false_accepts_per_hour": fa[w]["false_accepts_per_hour"]}
                for w in words}
    corpus.close()
    return result


def _cpu_per_audio_s(detector: Any, pcm: bytes) -> float:
    t0 = time.process_time()
    for i in range(0, len(pcm), CHUNK):
        detector.feed(pcm[i:i + CHUNK])
    return (time.process_time() - t0) / (len(pcm) / 2 / RATE)


def _detection(engine: str, word: str, clips: list[Clip], sensitivity: float = 0.5,
               ) -> dict[str, Any]:
    from appliance.voice.wake import open_detector

    hits: dict[str, list[int]] = {}
    latencies: list[float] = []
    missed: list[str] = []
    # One detector for all clips, with GAP_S of silence between them (longer than the
    # detector's memory and its refractory time): a fresh openWakeWord would first chew
    # through its 8 s of autofill for every clip.
    detector = open_detector(engine, [word], {word: sensitivity})
    fed = 0
    for clip in clips:
        pcm = bytes(int(GAP_S * RATE) * 2) + read_pcm(Path(clip.path)).tobytes()
        start_s = fed / 2 / RATE + GAP_S
        found = [d for i in range(0, len(pcm), CHUNK) for d in detector.feed(pcm[i:i + CHUNK])]
        fed += len(pcm)
        engine_name = clip.voice.split(":")[0]
        for key in (f"noise:{clip.noise}", f"voice:{engine_name}"):
            hits.setdefault(key, [0, 0])
            hits[key][0] += bool(found)
            hits[key][1] += 1
        if not found:
            missed.append(f"{clip.voice} {clip.noise} {clip.text!r}")
        elif clip.phrase_end_s is not None and clip.noise == "clean":
            latencies.append(found[0].end_s - start_s - clip.phrase_end_s)
    detector.close()
    detected = len(clips) - len(missed)
    return {
        "phrases": len(clips), "detected": detected,
        "detection_rate": round(detected / len(clips), 4) if clips else None,
        "by": {k: f"{v[0]}/{v[1]}" for k, v in sorted(hits.items())},
        "decision_latency_s": ({"p50": round(statistics.median(latencies), 3),
                                "p90": round(_p90(latencies), 3)} if latencies else None),
        "missed": missed[:20],
    }


def _over_echo(engine: str, corpus: Corpus, negatives: list[Path]) -> dict[str, str]:
    """okay_nabu said (alone, clean) while our own reply plays back into the microphone: the
    default piper voice's speech mixed in at 6-20 dB below the phrase. Detected / said."""
    from appliance.voice.wake import open_detector

    piper = next((p for p in negatives if "piper" in p.name and "-pink" not in p.name
                  and "-brown" not in p.name and "-babble" not in p.name), negatives[0])
    echo = read_pcm(piper).astype(np.float32)
    clips = [c for c in corpus.positives("okay_nabu")
             if c.noise == "clean" and c.phrase_end_s is not None]
    out = {}
    detector = open_detector(engine, ["okay_nabu"])
    for db in ECHO_DB:
        hit = 0
        for i, clip in enumerate(clips):
            pcm = read_pcm(Path(clip.path))
            start = (i * 7919 * RATE // 10) % max(1, len(echo) - len(pcm))
            mixed = bytes(int(GAP_S * RATE) * 2) + mix(pcm, echo[start:start + len(pcm)],
                                                        db).tobytes()
            hit += any([detector.feed(mixed[j:j + CHUNK]) for j in range(0, len(mixed), CHUNK)])
        out[f"echo_{db:g}dB_below"] = f"{hit}/{len(clips)}"
    detector.close()
    return out


def _false_accepts(engine: str, words: list[str], parts: list[Path],
                   sensitivity: float = 0.5) -> dict[str, Any]:
    from appliance.voice.wake import open_detector

    counts = dict.fromkeys(words, 0)
    where: dict[str, list[str]] = {w: [] for w in words}
    seconds = 0.0
    checked = 0  # cascade: candidates openWakeWord was asked about
    for part in parts:
        detector = open_detector(engine, words, dict.fromkeys(words, sensitivity))
        pcm = read_pcm(part).tobytes()
        for i in range(0, len(pcm), CHUNK):
            for d in detector.feed(pcm[i:i + CHUNK]):
                counts[d.word] += 1
                where[d.word].append(f"{part.name}@{d.end_s:.1f}s")
        checked += getattr(detector, "checked", 0)
        detector.close()
        seconds += len(pcm) / 2 / RATE
    hours = seconds / 3600
    extra = ({"candidates_checked_per_hour": round(checked / hours, 1)}
             if hours and engine == "cascade" else {})
    return {w: {"false_accepts": counts[w], "non_wake_hours": round(hours, 3),
                "false_accepts_per_hour": round(counts[w] / hours, 2) if hours else None,
                "false_accepts_at": where[w][:10], **extra} for w in words}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------- the daemon, hands-free


async def daemon_part(models: Path, corpus: Corpus, workdir: Path, short: bool,
                      ) -> dict[str, Any]:
    from appliance.config import VoiceConfig

    default_engine = VoiceConfig().wake_engine
    port = _free_port()
    cfg = daemon_config(workdir, port, models, "wake-bench", llm={"mode": "local"},
                        voice={"enabled": True, "language": "en", "wake_words": ["okay_nabu"]},
                        world={"mode": "off"})
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    log = open(workdir / "daemon.log", "wb")
    proc = subprocess.Popen(  # noqa: ASYNC220 - before timing
        [sys.executable, "-m", "appliance.cli", "run", "--config", str(workdir / "config.yaml")],
        stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    stream_s = SHORT_STREAM_S if short else STREAM_S
    try:
        await _wait_ready(url, proc)
        speech = np.concatenate([read_pcm(p) for p in corpus.negatives(0.01)]).tobytes()
        idle = {"no_client": await _daemon_cpu(url, proc.pid, None, stream_s),
                "silence": await _daemon_cpu(url, proc.pid, bytes(int(stream_s * RATE) * 2)),
                "speech": await _daemon_cpu(url, proc.pid, speech[: int(stream_s * RATE) * 2])}
        clips = [c for c in corpus.positives("okay_nabu")
                 if c.noise == "clean" and c.phrase_end_s is not None]
        n = SHORT_WAKES if short else WAKES
        wakes = [await _wake_latency(url, clips[i % len(clips)]) for i in range(n)]
        turn_pcm = corpus.speaker.say(corpus_voice(), TURN_TEXT.format(p=PHRASES["okay_nabu"]))
        await _turn(url, turn_pcm)  # warm-up: first-call costs are not the steady state
        turns = [await _turn(url, turn_pcm) for _ in range(SHORT_TURNS if short else TURNS)]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    ok = [w for w in wakes if w is not None]
    firsts = [t["end_of_speech_to_first_audio_s"] for t in turns if "error" not in t]
    return {
        "engine": default_engine, "daemon_cpu_pct_of_one_core": idle,
        "wake_event_latency_s": {"runs": len(wakes), "woken": len(ok),
                                 **({"p50": round(statistics.median(ok), 3),
                                     "p90": round(_p90(ok), 3)} if ok else {})},
        "turn": {"text": TURN_TEXT.format(p=PHRASES["okay_nabu"]), "runs": turns,
                 **({"end_of_speech_to_first_audio_s_p50": round(statistics.median(firsts), 3)}
                    if firsts else {})},
    }


def corpus_voice() -> Any:
    from wake_corpus import PIPER_VOICES

    return PIPER_VOICES[4]  # the default voice at its normal speed and pitch


async def _hands_free(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{url}/api/voice")
    await ws.send_str(json.dumps({"type": "start", "sample_rate": RATE, "hands_free": True}))
    while True:  # the hello, then the "waiting" that says the wake word is listened for
        event = json.loads((await ws.receive(timeout=30)).data)
        if event["type"] == "error":
            raise RuntimeError(f"hands-free refused: {event}")
        if event.get("state") == "waiting":
            return ws


async def _send_real_time(ws: aiohttp.ClientWebSocketResponse, pcm: bytes) -> float:
    """Stream ``pcm`` paced like a microphone; the wall time it started."""
    start = time.monotonic()
    for i in range(0, len(pcm), CHUNK):
        await asyncio.sleep(max(0.0, start + i / 2 / RATE - time.monotonic()))
        await ws.send_bytes(pcm[i:i + CHUNK])
    return start


async def _daemon_cpu(url: str, pid: int, pcm: bytes | None, seconds: float = 0.0) -> float:
    """The daemon's CPU (% of one core) while a hands-free client streams ``pcm`` (or, with
    None, while nobody is connected for ``seconds``)."""
    if pcm is None:
        t0, c0 = time.monotonic(), _proc_cpu_s(pid)
        await asyncio.sleep(seconds)
        return round(100 * (_proc_cpu_s(pid) - c0) / (time.monotonic() - t0), 2)
    async with aiohttp.ClientSession() as http:
        ws = await _hands_free(http, url)
        t0, c0 = time.monotonic(), _proc_cpu_s(pid)
        await _send_real_time(ws, pcm)
        used, wall = _proc_cpu_s(pid) - c0, time.monotonic() - t0
        await ws.close()
    return round(100 * used / wall, 2)


async def _wake_latency(url: str, clip: Clip) -> float | None:
    """Seconds from the end of the wake phrase to the ``wake`` event; None if not woken."""
    pcm = read_pcm(Path(clip.path)).tobytes()
    assert clip.phrase_end_s is not None
    woke: list[float] = []
    async with aiohttp.ClientSession() as http:
        ws = await _hands_free(http, url)

        async def receive() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "wake":
                    woke.append(time.monotonic())
                    return

        receiver = asyncio.create_task(receive())
        start = await _send_real_time(ws, pcm)
        try:
            await asyncio.wait_for(receiver, 2.0)
        except TimeoutError:
            pass
        await ws.close()
    return woke[0] - (start + clip.phrase_end_s) if woke else None


async def _turn(url: str, speech: np.ndarray) -> dict[str, Any]:
    pcm = np.concatenate([np.zeros(int(0.3 * RATE), np.int16), speech,
                          np.zeros(int(1.5 * RATE), np.int16)]).tobytes()
    end_at = 0.3 + speech_end_s(speech)
    result: dict[str, Any] = {}
    first_pcm: float | None = None
    async with aiohttp.ClientSession() as http:
        ws = await _hands_free(http, url)

        async def receive() -> None:
            nonlocal first_pcm
            while True:
                msg = await ws.receive(timeout=TURN_TIMEOUT_S)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    first_pcm = first_pcm or time.monotonic()
                    continue
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"socket closed: {msg}")
                event = json.loads(msg.data)
                if event["type"] in ("wake", "transcript", "reply", "error"):
                    result.setdefault(event["type"], event)
                if event["type"] == "done":
                    return

        receiver = asyncio.create_task(receive())
        start = await _send_real_time(ws, pcm)
        await asyncio.wait_for(receiver, TURN_TIMEOUT_S)
        await ws.close()
    if "error" in result or "reply" not in result:
        return {"error": result.get("error", "no reply"),
                "heard": result.get("transcript", {}).get("text")}
    return {"woke": "wake" in result, "heard": result["transcript"]["text"],
            "reply": result["reply"]["text"][:120],
            "end_of_speech_to_first_audio_s": round((first_pcm or float("nan"))
                                                    - (start + end_at), 3),
            **{k: round(v, 3) for k, v in result["reply"].get("timings", {}).items()}}


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", default=os.environ.get("HYBRID_AGENT_TEST_CACHE", DEFAULT_CACHE))
    p.add_argument("--models", default=os.environ.get("HYBRID_AGENT_TEST_MODELS",
                                                      DEFAULT_MODELS))
    p.add_argument("--hours", type=float, default=1.0, help="non-wake audio for false accepts")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--words", default=",".join(DEFAULT_WORDS))
    p.add_argument("--short", action="store_true", help="a quick run for the test suite")
    p.add_argument("--no-daemon", action="store_true", help="skip the real-time daemon part")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    cache, models = Path(args.cache), Path(args.models)
    words = ["okay_nabu"] if args.short else args.words.split(",")
    hours = min(args.hours, 1 / 60) if args.short else args.hours
    if args.worker:
        print(json.dumps(worker(args.worker, words, cache, models, hours, args.short)))
        return
    load = [os.getloadavg()[0]]
    corpus = Corpus(cache, models, short=args.short)
    try:
        for word in words:  # synthesize what is missing once, before anything is timed
            corpus.positives(word)
        corpus.negatives(hours)
        engines = {}
        daemon = None
        # The default engine first, then the daemon (the default engine in real time), then
        # the others; each result goes to stderr as it comes, in case a long run is cut.
        for i, engine in enumerate(args.engines.split(",")):
            argv = [sys.executable, __file__, "--worker", engine, "--cache", str(cache),
                    "--models", str(models), "--hours", str(hours), "--words", ",".join(words)]
            if args.short:
                argv.append("--short")
            out = subprocess.run(argv, check=True, capture_output=True, text=True)
            engines[engine] = json.loads(out.stdout)
            load.append(os.getloadavg()[0])
            print(f"wake bench: {engine}: {out.stdout.strip()}", file=sys.stderr, flush=True)
            if i == 0 and not args.no_daemon:
                with tempfile.TemporaryDirectory(prefix="wake-bench-") as tmp:
                    daemon = asyncio.run(daemon_part(models, corpus, Path(tmp), args.short))
                load.append(os.getloadavg()[0])
                print(f"wake bench: daemon: {json.dumps(daemon)}", file=sys.stderr, flush=True)
    finally:
        corpus.close()
    print(json.dumps({"bench": "wake", "cpus": os.cpu_count(), "short": args.short,
                      "load_average": [round(x, 2) for x in load], "engines": engines,
                      "daemon": daemon}, indent=2))


if __name__ == "__main__":
    main()
