"""Memory: one edge daemon vs the same code as the seed's separate services; prints JSON.

The seed design claims one process per box saves 0.5-1 GB against running the
components as separate services. This measures the part of that claim that can be
measured here, the processes themselves, by PSS (``/proc/PID/smaps_rollup``:
shared library pages are split between the processes that map them, so the sum
over processes is fair):

- ``one_daemon``: the edge daemon as installed (voice: Whisper base and the piper
  voice; agent and web; light tools; world model), after one /api/stt and one
  /api/tts;
- ``separate``: the same code as five Pythons, each with its own HTTP server, as
  the seed's services were: STT (appliance.voice.stt behind aiohttp), TTS
  (appliance.voice.tts behind aiohttp), agent + web (the daemon without voice, its
  world remote), the tool server (``hybrid-agent tools-server``) and the world model
  (the daemon with only its world, served); after one transcription and one
  synthesis through them;
- ``bare_daemon``: the daemon with nothing loaded, for scale.

Docker, Nomad and Consul, the rest of the seed's figure, do not run on this box and
are not measured (docs/performance.md says how much of the claim they make up).

    .venv/bin/python bench/footprint.py [--models DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import tempfile
import wave
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.daemon import DaemonProcess, free_port, minimal_config

DEFAULT_MODELS = Path(os.environ.get("HYBRID_AGENT_TEST_MODELS",
                                     "/var/cache/hybrid-agent-test/models"))
SENTENCE = "Please set a timer for ten minutes and turn on the kitchen lights."
START_TIMEOUT_S = 180.0
MB = 1024 * 1024


def memory(pid: int) -> dict[str, float]:
    """PSS and RSS of one process (and its threads) in MB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("Pss", "Rss"):
                out[key.lower() + "_mb"] = round(int(rest.split()[0]) * 1024 / MB, 1)
    return out


# ---------------------------------------------------------------- the separate services


def serve(kind: str, port: int, model: Path) -> None:
    """One of the seed's voice services: our STT or TTS code behind its own aiohttp server."""
    import numpy as np
    from aiohttp import web

    from appliance.voice.audio import read_wav, to_pipeline

    app = web.Application(client_max_size=32 * MB)
    if kind == "stt":
        from appliance.hardware import usable_physical_cores
        from appliance.voice.stt import Transcriber

        stt = Transcriber(model, threads=usable_physical_cores())
        stt.warm_up()

        async def transcribe(request: web.Request) -> web.Response:
            samples = to_pipeline(read_wav(await request.read()))
            done = await asyncio.to_thread(stt.transcribe, samples)
            return web.json_response({"text": done.text})

        app.router.add_post("/stt", transcribe)
    else:
        from appliance.voice.tts import Synthesizer

        tts = Synthesizer(model)

        async def synthesize(request: web.Request) -> web.Response:
            text = (await request.json())["text"]
            audio = await asyncio.to_thread(tts.synthesize_all, text)
            return web.Response(body=_wav(np.asarray(audio), tts.sample_rate),
                                content_type="audio/wav")

        app.router.add_post("/tts", synthesize)
    app.router.add_get("/health", lambda _: web.json_response({"ok": True}))
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def _wav(samples: Any, rate: int) -> bytes:
    """int16 mono samples as a WAV file."""
    pcm = samples.astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


async def start_service(kind: str, model: Path, tmp: Path) -> tuple[str, Any]:
    port = free_port()
    log = open(tmp / f"{kind}.log", "wb")  # lives as long as the process
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", kind, "--port", str(port), "--model", str(model),
        stdout=log, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as s:
        for _ in range(int(START_TIMEOUT_S * 10)):
            if proc.returncode is not None:
                log_text = (tmp / f"{kind}.log").read_text()
                raise RuntimeError(f"the {kind} service exited: {log_text}")
            try:
                async with s.get(url + "/health") as r:
                    if r.status == 200:
                        return url, proc
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the {kind} service did not come up")


async def daemon(tmp: Path, name: str, **sections: dict[str, Any]) -> DaemonProcess:
    d_tmp = tmp / name
    d_tmp.mkdir()
    cfg = minimal_config(d_tmp / "state", free_port(), **sections)
    cfg["logging"]["level"] = "warning"
    d = DaemonProcess(d_tmp, cfg)
    await d.start()
    return d


# ---------------------------------------------------------------- the measurement


async def main(args: argparse.Namespace) -> dict[str, Any]:
    models: Path = args.models
    voice = {"enabled": True, "stt_model": str(models / "whisper-base"),
             "tts_voice": str(models / "piper/en_US-joe-medium.onnx")}
    edge = {"llm": {"mode": "remote"}, "world": {"mode": "local"}, "voice": voice,
            "node": {"tier": "edge"}}
    out: dict[str, Any] = {"loadavg_before": os.getloadavg()}
    started: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="ha-footprint-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            bare = await daemon(tmp, "bare")
            started.append(bare)
            out["bare_daemon"] = memory(bare.proc.pid)

            one = await daemon(tmp, "one", **edge)
            started.append(one)
            async with aiohttp.ClientSession() as s:
                async with s.post(one.url + "/api/tts", json={"text": SENTENCE}) as r:
                    assert r.status == 200, await r.text()
                    wav = await r.read()
                async with s.post(one.url + "/api/stt", data=wav,
                                  headers={"Content-Type": "audio/wav"}) as r:
                    assert r.status == 200, await r.text()
                    heard_one = (await r.json())["text"]
            out["one_daemon"] = {"edge_daemon": memory(one.proc.pid), "heard": heard_one}

            world = await daemon(tmp, "world", world={"mode": "local", "serve": True})
            started.append(world)
            agent = await daemon(tmp, "agent", llm={"mode": "remote"},
                                 world={"mode": "remote", "endpoint": world.url},
                                 node={"tier": "edge"})
            started.append(agent)
            tools = await _tools_server(tmp)
            started.append(tools)
            stt_url, stt = await start_service("stt", models / "whisper-base", tmp)
            started.append(stt)
            tts_url, tts = await start_service("tts", models / "piper/en_US-joe-medium.onnx",
                                               tmp)
            started.append(tts)
            async with aiohttp.ClientSession() as s:
                async with s.post(tts_url + "/tts", json={"text": SENTENCE}) as r:
                    wav2 = await r.read()
                async with s.post(stt_url + "/stt", data=wav2) as r:
                    heard_sep = (await r.json())["text"]
            separate = {"stt": memory(stt.pid), "tts": memory(tts.pid),
                        "agent_web": memory(agent.proc.pid),
                        "tool_server": memory(tools.proc.pid),
                        "world_model": memory(world.proc.pid)}
            out["separate"] = {**separate, "heard": heard_sep}
            total = round(sum(p["pss_mb"] for p in separate.values()), 1)
            single = out["one_daemon"]["edge_daemon"]["pss_mb"]
            out["summary"] = {"one_daemon_pss_mb": single, "separate_pss_mb": total,
                              "saved_pss_mb": round(total - single, 1),
                              "separate_over_one": round(total / single, 2)}
        finally:
            for p in reversed(started):
                if isinstance(p, DaemonProcess):
                    await p.stop()
                elif p.returncode is None:
                    p.terminate()
                    await p.wait()
    out["loadavg_after"] = os.getloadavg()
    return out


async def _tools_server(tmp: Path) -> DaemonProcess:
    """`hybrid-agent tools-server`, as hybrid-agent-tools.service runs it."""
    d_tmp = tmp / "tools"
    d_tmp.mkdir()
    port = free_port()
    cfg = minimal_config(d_tmp / "state", port, tools={"server_port": port})
    cfg["logging"]["level"] = "warning"
    d = DaemonProcess(d_tmp, cfg, command="tools-server")
    await d.start()
    return d


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    ap.add_argument("--serve", choices=("stt", "tts"), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    return ap.parse_args()


if __name__ == "__main__":
    a = parse_args()
    if a.serve:
        serve(a.serve, a.port, a.model)
    else:
        print(json.dumps(asyncio.run(main(a)), indent=2))
