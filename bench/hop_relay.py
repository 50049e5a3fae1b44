"""The edge's own relay cost, with the model taken out; prints JSON.

An edge daemon (``llm.mode: remote``) forwards to a hand-written stand-in core:
a small aiohttp server on loopback that answers every chat at once with a
fixed four-chunk SSE stream (no model, no waiting). Time to first token through
the edge vs from the stand-in directly, interleaved; the difference is what the
edge's HTTP round itself costs (parse, route, forward, relay the first chunk),
the floor under the signed hop of ``bench/llm_serving.py``.
Run: ``.venv/bin/python bench/hop_relay.py [--n 400]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from llm_serving import HOP_TOKENS, one_stream, start_daemon

STAND_IN_CHUNKS = 4


def _frame(delta: dict[str, Any], finish: str | None) -> bytes:
    obj = {"id": "stand-in", "object": "chat.completion.chunk", "created": 0,
           "model": "stand-in", "choices": [{"index": 0, "delta": delta,
                                             "finish_reason": finish}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


async def stand_in_core(request: web.Request) -> web.StreamResponse:
    """The hand-written stand-in core: a fixed answer, at once."""
    await request.read()
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    await resp.write(_frame({"role": "assistant", "content": "Hi"}, None))
    for _ in range(STAND_IN_CHUNKS - 1):
        await resp.write(_frame({"content": " there"}, None))
    await resp.write(_frame({}, "length") + b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def main(n: int) -> dict[str, Any]:
    app = web.Application()
    app.router.add_post("/v1/chat/completions", stand_in_core)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    core = f"http://127.0.0.1:{runner.addresses[0][1]}"
    out: dict[str, Any] = {"n": n, "loadavg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="ha-hop-relay-") as tmp:
        edge = await start_daemon(Path(tmp), "edge", {"mode": "remote", "endpoints": [core]})
        try:
            direct: list[float] = []
            routed: list[float] = []
            async with aiohttp.ClientSession() as s:
                for url in (core, edge.url):  # warm-up, and a check that both answer
                    warm = await one_stream(s, url, HOP_TOKENS)
                    if not warm.get("ok"):
                        raise RuntimeError(f"warm-up failed for {url}: {warm}")
                for _ in range(n):
                    for url, samples in ((core, direct), (edge.url, routed)):
                        r = await one_stream(s, url, HOP_TOKENS)
                        if r.get("ttft_s") is not None:
                            samples.append(r["ttft_s"])
        finally:
            await edge.stop()
            await runner.cleanup()
    d50, r50 = statistics.median(direct), statistics.median(routed)
    out.update(answered=[len(direct), len(routed)], direct_ttft_p50_ms=round(d50 * 1e3, 2),
               via_edge_ttft_p50_ms=round(r50 * 1e3, 2),
               relay_added_p50_ms=round((r50 - d50) * 1e3, 2),
               loadavg_after=os.getloadavg())
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=400, help="requests per side")
    print(json.dumps(asyncio.run(main(ap.parse_args().n)), indent=2))
