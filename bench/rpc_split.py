"""A model split over two boxes vs on one: tokens/s, time to first token, link bytes, load time.

Prints JSON. Two "boxes" are network namespaces on a bridge (needs root):
``core`` runs two of our daemons on the same GGUF, ``local`` (the default in-process
engine) and ``split`` (``llm.rpc_workers``: its last layers on the other box), and
``worker`` runs a daemon with ``llm.rpc_serve``, reached only through the TLS link.
With ``--split-cpus`` (the default on a box with 2 or more CPUs) each box gets one
CPU, core CPU 0 and worker CPU 1, and every llama.cpp part one thread
(``llm.threads``/``llm.rpc_threads``), as two small boxes would have.

Measured in ``--rounds`` rounds that interleave local and split (the order flips
every round), each request streaming ``--tokens`` tokens at temperature 0:

- ``ttft_ms`` and decode ``tokens_per_s`` (first to last token) per target, their
  medians, and the ratio split/local;
- ``link_bytes_per_token``: the ggml RPC payload that crossed the link (both ways,
  as counted by the worker's end) during a request, over the tokens it generated
  (TLS adds its framing on top);
- ``load_s``: the split model's load, weights to the worker over the link included,
  and the same model host loading on this box alone (``alone``: a split engine
  whose only worker does not exist, after its wait for workers);
- with ``--link-cost``, what the TLS link itself costs, on one box and one namespace:
  a model host child whose worker is ggml's server on loopback, reached directly
  or through the link (LinkServer and LocalEnd, TLS included), interleaved
  (decode tokens/s per request; this shows the link, not the LAN);
- with ``--worker-kinds``, how the RPC worker is run: our child
  (``python -m appliance.llm.rpc.serve``, the choice) against ggml's own
  ``rpc-server`` built from the same vendored llama.cpp (``--rpc-server``, optional):
  start to listening, resident memory idle.

Run: ``sudo .venv/bin/python bench/rpc_split.py [--rounds 5] [--tokens 64]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.security.keys import create_key_file
from bench.llm_serving import DEFAULT_MODEL, _ms, _pin, cpu_description, one_stream
from tests.lan.netlab import Lan
from tests.support.daemon import DaemonProcess, free_port, minimal_config

CORE_CPU = {0}
WORKER_CPU = {1}
SPLIT_WAIT_S = 180.0
REQUEST_TIMEOUT_S = 300.0
DEFAULT_RPC_SERVER = Path("/var/cache/hybrid-agent-bench/rpc-server/ggml-rpc-server")
WORKER_NAME = "worker-w"
RPC_PORT = 8702


async def daemon(tmp: Path, lan: Lan, member: str, name: str, key_file: Path,
                 **sections: dict[str, Any]) -> DaemonProcess:
    d_tmp = tmp / name
    d_tmp.mkdir()
    cfg = minimal_config(d_tmp / "state", free_port(), **sections)
    cfg["node"].update(name=name, tier="core")
    cfg["http"]["host"] = "0.0.0.0"
    cfg["logging"]["level"] = "warning"
    cfg["discovery"] = {"enabled": True, "interfaces": ["veth0"]}
    cfg["security"] = {"cluster_key_file": str(key_file)}
    d = DaemonProcess(d_tmp, cfg, netns=lan.ns(member))
    await d.start()
    return d


#: Per daemon URL: how the bench reaches it, as a paired device (bearer token, the box's
#: HTTPS certificate pinned).
ACCESS: dict[str, dict[str, Any]] = {}


def paired(d: DaemonProcess, url: str) -> str:
    """``url`` of daemon ``d``, reached from now on as a paired device of it."""
    from tests.support.nodelink import device_token, web_pin

    ACCESS[url] = {"headers": {"Authorization": f"Bearer {device_token(d.state_dir, 'bench')}"},
                   "ssl": web_pin(d.state_dir)}
    return url


async def status(s: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with s.get(url + "/api/status", **ACCESS.get(url, {})) as r:
        body: dict[str, Any] = await r.json()
        return body


async def wait_llm(s: aiohttp.ClientSession, url: str, mode: str) -> dict[str, Any]:
    deadline = time.monotonic() + SPLIT_WAIT_S
    while time.monotonic() < deadline:
        llm = (await status(s, url))["components"]["llm"]
        if llm.get("serving") and llm.get("mode") == mode:
            return dict(llm)
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not serve its model ({mode}) within {SPLIT_WAIT_S}s")


def pin_tree(pid: int, cpus: set[int]) -> None:
    """``_pin`` for a daemon and its children (the model host, the RPC server)."""
    _pin(pid, cpus)
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                pin_tree(int(child), cpus)


async def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    key_file = tmp / "cluster.key"
    create_key_file(key_file)
    threads = 1 if args.split_cpus else 0
    model = {"mode": "local", "model": str(args.model), "serve": True, "slots": 1,
             "context": 2048, "threads": threads}
    lan = Lan.create(["core", "worker"])
    daemons: list[DaemonProcess] = []
    try:
        worker = await daemon(tmp, lan, "worker", WORKER_NAME, key_file, llm={
            "mode": "off", "rpc_serve": True, "rpc_threads": threads, "rpc_port": RPC_PORT})
        daemons.append(worker)
        local = await daemon(tmp, lan, "core", "core-local", key_file, llm=model)
        daemons.append(local)
        split = await daemon(tmp, lan, "core", "core-split", key_file,
                             llm={**model, "rpc_workers": [WORKER_NAME]})
        daemons.append(split)
        alone = await daemon(tmp, lan, "core", "core-alone", key_file,
                             llm={**model, "rpc_workers": ["no-such-worker"]})
        daemons.append(alone)
        urls = {"local": paired(local, f"https://{lan.addr('core')}:{local.port}"),
                "split": paired(split, f"https://{lan.addr('core')}:{split.port}")}
        worker_url = paired(worker, f"https://{lan.addr('worker')}:{worker.port}")
        alone_url = paired(alone, f"https://{lan.addr('core')}:{alone.port}")
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as s:
            split_llm = await wait_llm(s, urls["split"], "split")
            alone_llm = await wait_llm(s, alone_url, "alone")
            await alone.stop()  # only its load time was wanted
            daemons.remove(alone)
            if args.split_cpus:
                for d in (local, split):
                    pin_tree(d.proc.pid, CORE_CPU)
                pin_tree(worker.proc.pid, WORKER_CPU)
            for url in urls.values():  # warm-up, not counted
                warm = await one_stream(s, url, 4, bearer(url), ssl=ACCESS[url]["ssl"])
                if not warm.get("ok"):
                    raise RuntimeError(f"warm-up of {url} failed: {warm}")
            samples: dict[str, list[dict[str, Any]]] = {"local": [], "split": []}
            for r in range(args.rounds):
                order = ["local", "split"] if r % 2 == 0 else ["split", "local"]
                for target in order:
                    before = await link_bytes(s, worker_url)
                    url = urls[target]
                    got = await one_stream(s, url, args.tokens, bearer(url),
                                           ssl=ACCESS[url]["ssl"])
                    after = await link_bytes(s, worker_url)
                    if not got.get("ok"):
                        raise RuntimeError(f"{target} request failed: {got}")
                    got["link_bytes"] = after - before
                    samples[target].append(got)
        return {"placement": split_llm.get("placement"),
                "load_s": {"split": split_llm.get("load_s"), "alone": alone_llm.get("load_s")},
                **summarize(samples)}
    finally:
        for d in daemons:
            await d.stop()
        lan.destroy()


def bearer(url: str) -> Any:
    """one_stream's header source for ``url``: the paired device's token."""
    return lambda _method, _path, _body: ACCESS[url]["headers"]


async def link_bytes(s: aiohttp.ClientSession, worker_url: str) -> int:
    rpc = (await status(s, worker_url))["components"]["rpc_worker"]
    return int(rpc["bytes_sent"]) + int(rpc["bytes_received"])


def summarize(samples: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for target, runs in samples.items():
        rates = [(r["tokens"] - 1) / (r["elapsed_s"] - r["ttft_s"]) for r in runs
                 if r["tokens"] > 1 and r["elapsed_s"] > r["ttft_s"]]
        out[target] = {"requests": len(runs),
                       "tokens_per_request": [r["tokens"] for r in runs],
                       "ttft_ms_median": _ms(statistics.median(r["ttft_s"] for r in runs)),
                       "ttft_ms": [_ms(r["ttft_s"]) for r in runs],
                       "tokens_per_s_median": round(statistics.median(rates), 1),
                       "tokens_per_s": [round(x, 1) for x in rates]}
    split, local = out["split"], out["local"]
    per_token = [r["link_bytes"] / r["tokens"] for r in samples["split"] if r["tokens"]]
    out["split_vs_local"] = {
        "tokens_per_s_ratio": round(split["tokens_per_s_median"]
                                    / local["tokens_per_s_median"], 3),
        "ttft_ratio": round(split["ttft_ms_median"] / local["ttft_ms_median"], 3)}
    out["link_bytes_per_token_median"] = round(statistics.median(per_token))
    out["link_bytes_local_requests"] = [r["link_bytes"] for r in samples["local"]]
    return out


async def worker_kinds(args: argparse.Namespace) -> dict[str, Any]:
    """Our RPC worker child against ggml's rpc-server: start to listening, idle memory."""
    from appliance.llm.rpc import process

    kinds: dict[str, list[str]] = {"python_child": [
        sys.executable, "-m", "appliance.llm.rpc.serve", "--parent", str(os.getpid()),
        "--threads", "1", "--port"]}
    if args.rpc_server.is_file():
        kinds["ggml_rpc_server"] = [str(args.rpc_server), "-t", "1", "-p"]
    out: dict[str, Any] = {}
    for name, argv in kinds.items():
        starts, rss = [], []
        for _ in range(args.worker_runs):
            port = free_port()
            began = time.perf_counter()
            proc = await asyncio.create_subprocess_exec(
                *argv, str(port), stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)
            await wait_listening(proc, port)
            starts.append(time.perf_counter() - began)
            rss.append(vm_rss_mb(proc.pid))
            await process.stop(proc)
        out[name] = {"start_to_listening_ms_median": _ms(statistics.median(starts)),
                     "rss_mb_median": round(statistics.median(rss), 1)}
    if not args.rpc_server.is_file():
        out["ggml_rpc_server_missing"] = str(args.rpc_server)
    return out


async def link_cost(args: argparse.Namespace) -> dict[str, Any]:
    """Decode tokens/s of one split, its worker reached directly or through the link."""
    from appliance import config
    from appliance.llm.rpc import process
    from appliance.llm.rpc.link import NodeCertTrust
    from appliance.llm.rpc.tunnel import LinkServer, LocalEnd
    from appliance.security.nodetls import NodeTLS

    port = free_port()
    serve = await process.spawn("appliance.llm.rpc.serve", ["--port", str(port),
                                                             "--threads", "1"])
    # Two node certificates of one cluster, as a core and its worker have.
    tls_dir = Path(tempfile.mkdtemp(prefix="ha-rpc-cost-tls-"))
    worker_id, core_id = "b" * 32, "c" * 32
    worker = NodeTLS.load(tls_dir / "worker", worker_id, bytes(32))
    core = NodeTLS.load(tls_dir / "core", core_id, bytes(32))
    server = LinkServer(NodeCertTrust(worker), "127.0.0.1", 0, target=lambda: port,
                        status=dict)
    end = LocalEnd(NodeCertTrust(core), "worker", "127.0.0.1", 0, client=(core_id, "bench"),
                   peer_id=worker_id)
    rates: dict[str, list[float]] = {"direct": [], "link": []}
    try:
        await wait_listening(serve, port)
        await server.start()
        end.port = server.port
        await end.start()
        cfg = config.build({"node": {"state_dir": tempfile.mkdtemp(prefix="ha-rpc-cost-"),
                                     "tier": "core"},
                            "llm": {"mode": "local", "model": str(args.model), "threads": 1,
                                    "slots": 1, "context": 2048}})
        for r in range(args.rounds):
            for mode in (("direct", "link") if r % 2 == 0 else ("link", "direct")):
                endpoint = f"127.0.0.1:{port}" if mode == "direct" else end.endpoint
                rates[mode].append(await host_rate(cfg, endpoint, args.tokens))
    finally:
        await end.stop()
        await server.stop()
        await process.stop(serve)
        shutil.rmtree(tls_dir, ignore_errors=True)
    return {mode: {"tokens_per_s_median": round(statistics.median(v), 1),
                   "tokens_per_s": [round(x, 1) for x in v]} for mode, v in rates.items()}


async def host_rate(cfg: Any, endpoint: str, tokens: int) -> float:
    """Start a model host over ``endpoint``, time one answer's decode, stop it."""
    from appliance import config
    from appliance.llm.rpc import process

    proc = await process.spawn("appliance.llm.rpc.host",
                               ["--worker", f"worker={endpoint}", "--share", "1", "--share", "1"],
                               stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"token": "bench", "node_id": "bench", "source": "bench",
                                     "config": config.to_dict(cfg)}).encode())
        await proc.stdin.drain()
        proc.stdin.close()
        reply = json.loads(await asyncio.wait_for(proc.stdout.readline(), SPLIT_WAIT_S))
        url = f"http://127.0.0.1:{reply['port']}"
        headers = {"Authorization": "Bearer bench"}
        async with aiohttp.ClientSession(headers=headers) as s:
            await one_stream(s, url, 4)  # warm-up
            got = await one_stream(s, url, tokens)
        return float((got["tokens"] - 1) / (got["elapsed_s"] - got["ttft_s"]))
    finally:
        await process.stop(proc)


async def wait_listening(proc: asyncio.subprocess.Process, port: int) -> None:
    """Until ``proc`` listens on 127.0.0.1:``port`` (RuntimeError if it exits first)."""
    from appliance.llm.rpc.sockets import listening

    while not listening(port):
        if proc.returncode is not None:
            raise RuntimeError(f"{proc.pid} exited with {proc.returncode}")
        await asyncio.sleep(0.005)


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"model": args.model.name, "tokens": args.tokens,
                           "rounds": args.rounds, "split_cpus": args.split_cpus,
                           "cpu": cpu_description(), "loadavg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="ha-rpc-bench-") as tmp:
        out.update(await measure(args, Path(tmp)))
    if args.link_cost:
        out["link_cost"] = await link_cost(args)
    if args.worker_kinds:
        out["worker_kinds"] = await worker_kinds(args)
    out["loadavg_after"] = os.getloadavg()
    return out


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--split-cpus", action=argparse.BooleanOptionalAction,
                    default=(os.cpu_count() or 1) >= 2,
                    help="one CPU and one llama.cpp thread per box (default: on with 2+ CPUs)")
    ap.add_argument("--link-cost", action="store_true",
                    help="also time a split on one box with its worker direct vs through "
                         "the link")
    ap.add_argument("--worker-kinds", action="store_true",
                    help="also compare our RPC worker child with ggml's rpc-server")
    ap.add_argument("--worker-runs", type=int, default=5)
    ap.add_argument("--rpc-server", type=Path, default=DEFAULT_RPC_SERVER,
                    help="ggml's rpc-server built from the same llama.cpp (optional)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        ap.error("needs root: the two boxes are network namespaces")
    return args


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args())), indent=2))
