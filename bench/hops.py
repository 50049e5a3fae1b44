"""What a hop costs: an in-process call vs the same call over loopback HTTP; prints JSON.

- ``tool_call``: the calculator through ``invoke()`` in-process, and the same
  tool through :class:`RemoteToolProxy` to a real tool server (a daemon
  subprocess on 127.0.0.1, signed requests);
- ``world_read``: ``LocalWorld.get`` in-process, and ``RemoteWorld.get`` to
  the same daemon's world model.

Each: p50 and p99 in microseconds over ``--n`` calls after a warm-up.
Run: ``.venv/bin/python bench/hops.py [--n 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.net.peer import PeerClient
from appliance.security.keys import create_key_file
from appliance.security.signing import Signer
from appliance.tools.base import invoke
from appliance.tools.calculator import Calculator
from appliance.tools.remote import RemoteToolProxy
from appliance.world.remote import RemoteWorld
from appliance.world.store import LocalWorld
from tests.support.daemon import DaemonProcess, free_port, minimal_config

WARMUP = 50
CALL_TIMEOUT_S = 10.0
ARGS = {"expression": "(12*7)+sqrt(16)"}


async def measure(n: int, call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    for _ in range(WARMUP):
        await call()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await call()
        samples.append((time.perf_counter_ns() - t0) / 1000.0)
    samples.sort()
    return {"n": n, "p50_us": round(statistics.median(samples), 1),
            "p99_us": round(samples[min(n - 1, int(n * 0.99))], 1),
            "mean_us": round(statistics.fmean(samples), 1)}


async def main(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ha-hops-") as tmp_name:
        tmp = Path(tmp_name)
        key_file = tmp / "cluster.key"
        key = create_key_file(key_file)
        cfg = minimal_config(tmp / "state", free_port(),
                             node={"tier": "core"}, logging={"level": "warning"},
                             tools={"serve": True, "enabled": ["calculator"]},
                             world={"mode": "local"},
                             security={"cluster_key_file": str(key_file)})
        daemon = DaemonProcess(tmp, cfg)
        await daemon.start()
        client = PeerClient(lambda: daemon.url, Signer(key).sign_headers)
        local_world = LocalWorld(tmp / "local-world")
        await local_world.start()
        try:
            calc = Calculator()
            remote_calc = RemoteToolProxy(Calculator, client)
            for obs in (await invoke(calc, ARGS, CALL_TIMEOUT_S),
                        await invoke(remote_calc, ARGS, CALL_TIMEOUT_S)):
                assert obs == {"ok": True, "result": {"expression": ARGS["expression"],
                                                      "value": 88}}, obs
            remote_world = RemoteWorld(client)
            await local_world.set("kitchen.light", {"state": "on", "level": 70})
            await remote_world.set("kitchen.light", {"state": "on", "level": 70})
            result = {
                "tool_call": {
                    "in_process": await measure(n, lambda: invoke(calc, ARGS, CALL_TIMEOUT_S)),
                    "remote_loopback_http": await measure(
                        n, lambda: invoke(remote_calc, ARGS, CALL_TIMEOUT_S)),
                },
                "world_write_durable": {
                    # fsync'd before the answer; one writer, so no group commit helps.
                    "in_process": await measure(n, lambda: local_world.set("bench.w", 1)),
                    "remote_loopback_http": await measure(
                        n, lambda: remote_world.set("bench.w", 1)),
                },
                "world_read": {
                    "in_process": await measure(n, lambda: local_world.get("kitchen.light")),
                    "remote_loopback_http": await measure(
                        n, lambda: remote_world.get("kitchen.light")),
                },
            }
        finally:
            await client.close()
            await local_world.stop()
            await daemon.stop()
    for hop in result.values():
        hop["added_by_the_hop_p50_us"] = round(
            hop["remote_loopback_http"]["p50_us"] - hop["in_process"]["p50_us"], 1)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="calls per measurement")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.n)), indent=2))
