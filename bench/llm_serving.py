"""LLM serving: aggregate tokens/s and time to first token under concurrency; prints JSON.

Targets, all on the same GGUF, each started on 127.0.0.1 **alone on the box and with
its own defaults** (as their users run them: no threads, slots or environment
imposed), measured in rounds that interleave the targets:

- ``daemon``: our daemon with the LLM defaults of a core box (``--daemon-tier mid`` for a
  mid box's; ``--daemon-llm`` can set llm keys for an experiment, e.g.
  ``wait_policy=passive``; the JSON says which were set);
- ``llama_server``: llama.cpp's ``llama-server`` built from the llama.cpp vendored in
  the llama-cpp-python 0.3.36 sdist (see docs/performance.md), with ``--no-repack``
  on AMX CPUs, where its weight repacking crashes (llama.cpp issue 20824);
- ``llama_cpp_server``: llama-cpp-python's own ``python -m llama_cpp.server`` (needs
  its [server] extras). It cannot turn repacking off: on AMX CPUs it crashes at the
  first request, and the JSON says so under ``failed_to_serve``.

Each of 1, 4, 8 concurrent streaming clients asks for --tokens tokens at temperature 0.
The JSON starts with the CPU (model, flags, AMX) and the load average.

Also the hop (``hop`` in the JSON): time to first token through an edge daemon that
routes to a core vs asking the core directly, --hop-n requests each, interleaved. The
core runs in a network namespace this script creates (needs root), so the edge reaches
it over a veth, not loopback: both share a cluster key, and both sides reach the core
over the node link (mutual TLS with certificates endorsed by the key, each request
signed for the core): the edge as it always does, the direct requests from this script
with its own endorsed certificate, as another node's would. An unsigned request on the
link is refused (401), which the bench checks first. ``sign_and_verify_us`` is one sign
+ verify in-process. Without root the hop runs on loopback (``"lan": false``).
``--hop-split-cpus`` makes the hop's two boxes separate, as on a LAN: the core gets
CPU 0 (and one llama thread), the edge and this script (the app on the edge box) CPU 1;
without it all three share both CPUs with the core's llama threads.
``--hop-only`` runs only the hop. Run: ``.venv/bin/python bench/llm_serving.py [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.security.keys import create_key_file
from appliance.security.nodetls import NodeTLS
from appliance.security.signing import Signer, Verifier
from tests.lan.netlab import Lan
from tests.support.daemon import DaemonProcess, free_port, minimal_config

DEFAULT_MODEL = Path("/var/cache/hybrid-agent-test/models/llm/SmolLM2-135M-Instruct.Q4_1.gguf")
DEFAULT_LLAMA_SERVER = Path("/var/cache/hybrid-agent-bench/build/bin/llama-server")
PROMPT = "Write a long story about a dragon who learns to fly."
START_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 600.0
HOP_REQUESTS = 100
HOP_TIMEOUT_S = 60.0
HOP_TOKENS = 4
SIGN_SAMPLES = 2000
CORE_CPU = {0}  # --hop-split-cpus: the core box
EDGE_CPU = {1}  # the edge box: its daemon and the app (this script)
CHAT_PATH = "/v1/chat/completions"


async def one_stream(session: aiohttp.ClientSession, url: str, tokens: int,
                     signer: Any = None, **request: Any) -> dict[str, Any]:
    """One streaming request (signed with ``signer``; ``request`` goes to aiohttp, e.g. the
    node link's TLS): TTFT, tokens received, finish reason."""
    body = {"model": "default", "stream": True, "max_tokens": tokens, "temperature": 0,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": PROMPT}]}
    t0 = time.perf_counter()
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signer is not None:
        headers.update(signer("POST", CHAT_PATH, data))
    ttft = None
    chunks = 0
    usage_tokens = None
    finish = None
    async with session.post(url + CHAT_PATH, data=data, headers=headers, **request) as r:
        if r.status != 200:
            return {"ok": False, "error": f"HTTP {r.status}: {(await r.text())[:200]}"}
        async for raw in r.content:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            obj = json.loads(data)
            if obj.get("usage"):
                usage_tokens = obj["usage"].get("completion_tokens")
            for choice in obj.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    chunks += 1
                finish = choice.get("finish_reason") or finish
    n = usage_tokens if usage_tokens is not None else chunks
    return {"ok": finish in ("stop", "length"), "tokens": n, "ttft_s": ttft,
            "finish": finish, "elapsed_s": time.perf_counter() - t0}


async def run_clients(url: str, clients: int, tokens: int) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        t0 = time.perf_counter()
        results = await asyncio.gather(*[one_stream(s, url, tokens) for _ in range(clients)])
        wall = time.perf_counter() - t0
    total = sum(r.get("tokens", 0) for r in results)
    ttfts = sorted(r["ttft_s"] for r in results if r.get("ttft_s") is not None)
    return {"clients": clients, "wall_s": round(wall, 3), "tokens": total,
            "tokens_per_s": round(total / wall, 1),
            "ttft_p50_ms": _ms(_pct(ttfts, 50)), "ttft_p95_ms": _ms(_pct(ttfts, 95)),
            "completed_in_full": sum(1 for r in results if r.get("ok")
                                     and r.get("tokens") == tokens),
            "finished": sum(1 for r in results if r.get("ok")),
            "errors": [r["error"] for r in results if "error" in r][:3]}


async def wait_http(url: str, path: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with s.get(url + path) as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {START_TIMEOUT_S}s")


async def start_process(argv: list[str], port: int, log: Path, env: dict[str, str],
                        ready_path: str) -> asyncio.subprocess.Process:
    fh = open(log, "wb")  # lives as long as the process
    proc = await asyncio.create_subprocess_exec(*argv, stdout=fh, stderr=asyncio.subprocess.STDOUT,
                                                env=env)
    await wait_http(f"http://127.0.0.1:{port}", ready_path, proc)
    return proc


async def start_daemon(tmp: Path, name: str, llm: dict[str, Any], *,
                       netns: str | None = None, env: dict[str, str] | None = None,
                       **sections: dict[str, Any]) -> DaemonProcess:
    d_tmp = tmp / name
    d_tmp.mkdir()
    cfg = minimal_config(d_tmp / "state", free_port(), llm=llm, **sections)
    cfg["logging"]["level"] = "warning"
    d = DaemonProcess(d_tmp, cfg, netns=netns, env=env)
    await d.start()
    return d


def cpu_description() -> dict[str, Any]:
    """The CPU model and the flags that decide llama.cpp's kernels (and its AMX crash)."""
    from appliance.llm import cpu

    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    flags = cpu.cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni",
              "amx_tile", "amx_int8", "amx_bf16", "asimd", "sve")
    return {"model": model, "cpus": os.cpu_count(), "flags": sorted(f for f in wanted
                                                                    if f in flags),
            "amx": bool(cpu.amx_reason("", flags))}


async def start_target(name: str, args: argparse.Namespace, tmp: Path, round_no: int,
                       amx: bool) -> tuple[str, Any]:
    """Start one server the way its users run it: its own defaults, no environment
    imposed, only llama.cpp's --no-repack where AMX repacking crashes (llama.cpp #20824).
    Returns its URL and a handle for stop_target."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    port = free_port()
    if name == "daemon":
        llm: dict[str, Any] = {"mode": "local", "model": str(args.model), **args.daemon_llm}
        d = await start_daemon(tmp, f"{name}-{round_no}", llm, env=env,
                               node={"tier": args.daemon_tier})
        return d.url, d
    if name == "llama_cpp_server":
        argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(args.model),
                "--host", "127.0.0.1", "--port", str(port)]
        ready = "/v1/models"
    elif name == "llama_server":
        argv = [str(args.llama_server), "-m", str(args.model), "--host", "127.0.0.1",
                "--port", str(port)] + (["--no-repack"] if amx else [])
        ready = "/health"
    else:
        raise ValueError(f"unknown target {name}")
    proc = await start_process(argv, port, tmp / f"{name}-{round_no}.log", env, ready)
    return f"http://127.0.0.1:{port}", proc


async def stop_target(handle: Any) -> None:
    if isinstance(handle, DaemonProcess):
        await handle.stop()
        return
    if handle.returncode is None:
        handle.terminate()
        try:
            await asyncio.wait_for(handle.wait(), 15)
        except TimeoutError:
            handle.kill()
            await handle.wait()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    described = cpu_description()
    out: dict[str, Any] = {"model": args.model.name, "tokens": args.tokens,
                           "rounds": args.rounds, "cpu": described,
                           "daemon_tier": args.daemon_tier, "daemon_llm": args.daemon_llm,
                           "loadavg_before": os.getloadavg()}
    targets = [t for t in ([] if args.hop_only else args.targets)
               if t != "llama_server" or args.llama_server.is_file()]
    if "llama_server" in args.targets and not args.llama_server.is_file():
        out["llama_server_missing"] = str(args.llama_server)
    with tempfile.TemporaryDirectory(prefix="ha-llm-bench-") as tmp_name:
        tmp = Path(tmp_name)
        results: dict[str, dict[str, list[dict[str, Any]]]] = {t: {} for t in targets}
        failures: dict[str, str] = {}
        for round_no in range(args.rounds):
            for name in targets:
                if name in failures:
                    continue
                # Each server alone on the box: started, measured, stopped.
                try:
                    url, handle = await start_target(name, args, tmp, round_no,
                                                     described["amx"])
                except RuntimeError as exc:
                    failures[name] = str(exc)
                    continue
                try:
                    await run_clients(url, 1, 8)  # warm-up: page the model in
                    for clients in args.clients:
                        r = await run_clients(url, clients, args.tokens)
                        print(f"{name} x{clients}: {r}", file=sys.stderr)
                        results[name].setdefault(str(clients), []).append(r)
                finally:
                    await stop_target(handle)
        out["results"] = {name: {c: _summary(runs) for c, runs in per.items()}
                          for name, per in results.items() if per}
        if failures:
            out["failed_to_serve"] = failures
        if "daemon" in out["results"] and "llama_server" in out["results"]:
            ours, theirs = out["results"]["daemon"], out["results"]["llama_server"]
            out["daemon_vs_llama_server"] = {
                c: {"tokens_per_s": round(ours[c]["tokens_per_s"] /
                                          max(0.1, theirs[c]["tokens_per_s"]), 2),
                    "ttft_p50": round(ours[c]["ttft_p50_ms"] / theirs[c]["ttft_p50_ms"], 2)
                    if ours[c]["ttft_p50_ms"] and theirs[c]["ttft_p50_ms"] else None}
                for c in ours if c in theirs}
        if args.hop:
            out["hop"] = await signed_hop(tmp, args)
    out["loadavg_after"] = os.getloadavg()
    return out


async def signed_hop(tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A core (in a namespace when root) and an edge sharing a key; see the module doc."""
    key_file = tmp / "cluster.key"
    key = create_key_file(key_file)
    security = {"cluster_key_file": str(key_file)}
    split = args.hop_split_cpus
    core_llm = {"mode": "local", "model": str(args.model), "serve": True,
                **args.daemon_llm, **({"threads": 1} if split else {})}
    daemons: list[DaemonProcess] = []
    lan = Lan.create(["core"], multicast=False) if os.geteuid() == 0 else None
    try:
        if lan is not None:
            core = await start_daemon(tmp, "hop-core", core_llm, netns=lan.ns("core"),
                                      security=security, http={"host": lan.addr("core")})
            core_url = f"https://{lan.addr('core')}:{core.port}"
        else:
            core = await start_daemon(tmp, "hop-core", core_llm, security=security)
            core_url = core.node_url  # the node link (TLS) on loopback
        daemons.append(core)
        edge = await start_daemon(tmp, "hop-edge", {"mode": "remote",
                                                    "endpoints": [core_url]},
                                  security=security)
        daemons.append(edge)
        if split:  # two one-CPU boxes: the core on CPU 0; the edge and its app on CPU 1
            _pin(core.proc.pid, CORE_CPU)
            _pin(edge.proc.pid, EDGE_CPU)
            _pin(os.getpid(), EDGE_CPU)
        async with aiohttp.ClientSession() as s, s.get(core_url + "/health", ssl=False) as r:
            core_id = (await r.json())["id"]  # (/health is open; this only learns the id)

        def signer(method: str, path: str, body: bytes) -> dict[str, str]:
            return Signer(key).sign_headers(method, path, body, receiver=core_id)

        # The direct side goes over the node link too (this process with its own endorsed
        # certificate, as another edge would), so both sides pay for TLS to the core.
        tls = NodeTLS.ephemeral(tmp / "bench-node", key)
        link = {"ssl": tls.client_context(core_id), "server_hostname": tls.server_hostname(core_id)}
        async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=HOP_TIMEOUT_S)) as s:
            refused = await one_stream(s, core_url, HOP_TOKENS, **link)
            if "HTTP 401" not in refused.get("error", ""):  # the core checks signatures here
                raise RuntimeError(f"an unsigned request was not refused: {refused}")
            result = await hop(s, core_url, edge.url, args.hop_n, signer, link)
        result.update(signed=True, tls=True, lan=lan is not None,
                      sign_and_verify_us=sign_and_verify_us(key), split_cpus=split)
        return result
    finally:
        if split:
            _pin(os.getpid(), set(range(os.cpu_count() or 1)))
        for d in daemons:
            await d.stop()
        if lan is not None:
            lan.destroy()


async def hop(s: aiohttp.ClientSession, core: str, edge: str, n: int,
              signer: Any, link: dict[str, Any]) -> dict[str, Any]:
    """TTFT of short answers, edge->core vs core directly (signed, over the node link),
    interleaved."""
    direct: list[float] = []
    routed: list[float] = []
    how = {core: link, edge: {}}
    for url, sign in ((core, signer), (edge, None)):
        warm = await one_stream(s, url, HOP_TOKENS, sign, **how[url])
        print(f"hop warm-up {url}: {warm}", file=sys.stderr)
        if not warm.get("ok"):
            raise RuntimeError(f"hop warm-up failed for {url}: {warm}")
    pairs: list[float] = []
    for _ in range(n):
        got = []
        for url, sign, samples in ((core, signer, direct), (edge, None, routed)):
            r = await one_stream(s, url, HOP_TOKENS, sign, **how[url])
            if r.get("ttft_s") is not None:
                samples.append(r["ttft_s"])
                got.append(r["ttft_s"])
        if len(got) == 2:  # back to back, so both saw about the same load
            pairs.append(got[1] - got[0])
    direct.sort()
    routed.sort()
    p50_direct, p50_routed = statistics.median(direct), statistics.median(routed)
    return {"n": n, "answered": [len(direct), len(routed)],
            "direct_ttft_p50_ms": _ms(p50_direct),
            "direct_ttft_p95_ms": _ms(_pct(direct, 95)),
            "via_edge_ttft_p50_ms": _ms(p50_routed),
            "via_edge_ttft_p95_ms": _ms(_pct(routed, 95)),
            "added_p50_ms": _ms(p50_routed - p50_direct),
            "added_paired_p50_ms": _ms(statistics.median(pairs))}


def _pin(pid: int, cpus: set[int]) -> None:
    """Put every thread of ``pid`` on ``cpus`` (threads made later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task.name), cpus)


def sign_and_verify_us(key: bytes) -> float:
    """Median microseconds of one sign + one verify of a hop-sized request, in-process."""
    node = "0" * 32
    signer, verifier = Signer(key), Verifier(key, node, started_at=0.0)
    body = json.dumps({"model": "default", "messages": [{"role": "user",
                                                         "content": PROMPT}]}).encode()
    samples = []
    for _ in range(SIGN_SAMPLES):
        t0 = time.perf_counter_ns()
        verifier.verify("POST", CHAT_PATH, body,
                        signer.sign_headers("POST", CHAT_PATH, body, receiver=node))
        samples.append((time.perf_counter_ns() - t0) / 1000.0)
    return round(statistics.median(samples), 1)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = max(runs, key=lambda r: r["tokens_per_s"])
    return {"tokens_per_s": best["tokens_per_s"],
            "tokens_per_s_rounds": [r["tokens_per_s"] for r in runs],
            "ttft_p50_ms": statistics.median(r["ttft_p50_ms"] for r in runs
                                             if r["ttft_p50_ms"] is not None)
            if any(r["ttft_p50_ms"] is not None for r in runs) else None,
            "ttft_p95_ms": max((r["ttft_p95_ms"] for r in runs if r["ttft_p95_ms"] is not None),
                               default=None),
            "requests": sum(r["clients"] for r in runs),
            "completed_in_full": sum(r["completed_in_full"] for r in runs),
            "finished": sum(r["finished"] for r in runs),
            "errors": [e for r in runs for e in r["errors"]][:3]}


def _pct(values: list[float], p: int) -> float | None:
    if not values:
        return None
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _settings(text: str) -> dict[str, Any]:
    """key=value,... -> a dict, values parsed as YAML scalars (8 -> 8, off -> "off")."""
    out: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        parsed = yaml.safe_load(value)
        out[key.strip()] = value if isinstance(parsed, bool) else parsed
    return out


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--llama-server", type=Path, default=DEFAULT_LLAMA_SERVER)
    ap.add_argument("--daemon-tier", default="core", choices=("mid", "core"),
                    help="the tier whose LLM defaults our daemon runs with (core: 8 slots, "
                         "mid: 4)")
    ap.add_argument("--daemon-llm", type=_settings, default={},
                    help="llm settings for our daemon as key=value,... (default: none, the "
                         "daemon's own defaults; e.g. wait_policy=passive,slots=8)")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1, 4, 8])
    ap.add_argument("--rounds", type=int, default=4,
                    help="rounds per target and client count; the best round is reported "
                         "(with 2 rounds, 1 client swung 0.79x-1.04x on a shared box)")
    ap.add_argument("--targets", type=lambda s: s.split(","),
                    default=["daemon", "llama_server", "llama_cpp_server"],
                    help="daemon, llama_server, llama_cpp_server: each runs alone, with its "
                         "own defaults")
    ap.add_argument("--no-hop", dest="hop", action="store_false")
    ap.add_argument("--hop-n", type=int, default=HOP_REQUESTS,
                    help="requests per side of the hop measurement")
    ap.add_argument("--hop-only", action="store_true", help="measure only the hop")
    ap.add_argument("--hop-split-cpus", action="store_true",
                    help="the hop's core on CPU 0 (one llama thread), the edge and this "
                         "script on CPU 1: two boxes, as on a LAN (needs 2 CPUs)")
    return ap.parse_args()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args())), indent=2))
