"""What the node link's TLS costs a request: one daemon, the same kept-alive HTTP/1.1 client
(appliance/net/http1.py), requests over mutual TLS vs plain HTTP, interleaved.

Both sides are on this box's loopback, so the difference is TLS's work (records, the asyncio
SSL transport) and nothing of a network's; the model is not involved (``/health``, and a
signed 16 KiB ``PUT`` of a world value and its ``GET`` over the peer-only path), so the
numbers are not buried in the LLM's time as the hop's are (bench/llm_serving.py --hop-only).
Also the first request on a new connection: the mutual handshake (Ed25519, the CRL checked).
Prints JSON. Run: ``.venv/bin/python bench/node_link.py [--n 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.net.http1 import Origin, Pool
from appliance.security.keys import create_key_file
from appliance.security.nodetls import NodeTLS
from appliance.security.signing import Signer
from tests.support.daemon import DaemonProcess, free_port, minimal_config

VALUE = json.dumps("x" * 16 * 1024).encode()


async def one(pool: Pool, origin: Origin, method: str, path: str, body: bytes | None,
              sign: Any) -> float:
    t0 = time.perf_counter()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    resp = await pool.request(method, origin, path, body, headers, connect_timeout_s=10.0,
                              sign=sign)
    try:
        await resp.read(1 << 20)
        assert resp.status == 200, resp.status
    finally:
        resp.release()
    return time.perf_counter() - t0


async def run(n: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ha-bench-link-"))
    key_file = tmp / "cluster.key"
    key = create_key_file(key_file)
    d = DaemonProcess(tmp, minimal_config(tmp / "state", free_port(),
                                          security={"cluster_key_file": str(key_file)},
                                          world={"mode": "local", "serve": True},
                                          logging={"level": "warning"}))
    await d.start()
    try:
        tls = NodeTLS.ephemeral(tmp / "bench", key)
        signer = Signer(key)
        node_id = (await d.get_json("/health"))[1]["id"]
        links = {"tls": (Pool(node_tls=lambda: tls), Origin.parse(d.node_url)),
                 "http": (Pool(), Origin.parse(d.url))}

        def signed(method: str, path: str, body: bytes) -> Any:
            return lambda _reached: signer.sign_headers(method, path, body, receiver=node_id)

        first = {}
        for name, (pool, origin) in links.items():
            first[name] = round(1000 * await one(pool, origin, "GET", "/health", None, None), 2)
        cases = {"health": ("GET", "/health", None),
                 "world_put_16k": ("PUT", "/api/world/v", VALUE),
                 "world_get_16k": ("GET", "/api/world/v", None)}
        samples: dict[str, dict[str, list[float]]] = {c: {k: [] for k in links} for c in cases}
        for _ in range(n):
            for case, (method, path, body) in cases.items():
                for name, (pool, origin) in links.items():  # interleaved: both see one load
                    sign = signed(method, path, body or b"") if name == "tls" else None
                    samples[case][name].append(await one(pool, origin, method, path, body,
                                                         sign))
        for pool, _ in links.values():
            await pool.close()
    finally:
        await d.stop()
    out: dict[str, Any] = {"n": n, "first_request_ms": first}
    for case, by in samples.items():
        p50 = {k: statistics.median(v) * 1000 for k, v in by.items()}
        out[case] = {"tls_p50_ms": round(p50["tls"], 3), "http_p50_ms": round(p50["http"], 3),
                     "added_p50_ms": round(p50["tls"] - p50["http"], 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="requests per case and side")
    args = ap.parse_args()
    before = os.getloadavg()
    result = asyncio.run(run(args.n))
    print(json.dumps({"loadavg_before": before, **result, "loadavg_after": os.getloadavg()},
                     indent=1))


if __name__ == "__main__":
    main()
