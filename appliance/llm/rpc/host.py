"""The model host child: the engine, its last layers on RPC workers, answering its daemon only.

``python -m appliance.llm.rpc.host --parent PID [--worker NAME=127.0.0.1:PORT ...]
[--share F ...]``, started by :class:`appliance.llm.rpc.split.SplitEngine`.

Why a child: ggml's RPC client aborts its whole process when a worker vanishes
mid-step ("Remote RPC server crashed or returned malformed response"). Here that
ends this child, not the daemon: the daemon sees the exit, says so, and reloads.

stdin carries one JSON object, ``{"token", "node_id", "source", "config"}`` (the
daemon's effective config); every HTTP request must then carry ``Authorization:
Bearer <token>``. The child serves the same engine and OpenAI API as the daemon,
on 127.0.0.1 at a free port, and writes one JSON line to its stdout once it
answers: ``{"port", "placement", "load_s"}``, or ``{"error"}`` if it cannot
load. Anything native code prints goes to stderr (the journal). The shares are
this box's, then each worker's (``--share`` once per place, this box first).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hmac
import json
import logging
import os
import signal
import sys
import time
from typing import Any, TextIO

from appliance.llm.rpc.process import die_with_parent

log = logging.getLogger("appliance.llm.rpc.host")

MAX_BRIEF_BYTES = 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m appliance.llm.rpc.host",
                                description="the model host of a split model (a daemon's child)")
    p.add_argument("--parent", type=int, required=True, help="the daemon's pid")
    p.add_argument("--worker", action="append", default=[], metavar="NAME=HOST:PORT",
                   help="an RPC endpoint (a local end of the link) and its node's name")
    p.add_argument("--share", action="append", type=float, default=[],
                   help="layer shares: this box, then each worker in order")
    args = p.parse_args(argv)
    die_with_parent(args.parent)
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # printf from native code must not corrupt the reply line
    brief = json.loads(sys.stdin.read(MAX_BRIEF_BYTES))
    workers = [w.split("=", 1) for w in args.worker]
    if any(len(w) != 2 for w in workers):
        p.error("--worker takes NAME=HOST:PORT")
    from appliance import config as config_mod
    from appliance import logs

    cfg = config_mod.build(brief["config"], source=str(brief.get("source", "<daemon>")),
                           detected_tier=str(brief["config"]["node"]["tier"]))
    logs.setup(cfg.logging.level)
    return asyncio.run(_serve(cfg, str(brief["node_id"]), str(brief["token"]),
                              [(n, e) for n, e in workers], args.share, reply))


async def _serve(cfg: Any, node_id: str, token: str, workers: list[tuple[str, str]],
                 shares: list[float], reply: TextIO) -> int:
    from aiohttp import web

    from appliance.llm.engine import Engine, EngineSettings
    from appliance.llm.router import Router
    from appliance.node import Node
    from appliance.web import openai_api
    from appliance.web.app import create_app

    llm = dataclasses.replace(cfg.llm, mode="local", rpc_workers=[], endpoints=[])
    cfg = dataclasses.replace(cfg, llm=llm)
    settings = dataclasses.replace(
        EngineSettings.from_config(cfg), state_dir=None,
        rpc_endpoints=tuple(e for _, e in workers), rpc_shares=tuple(shares),
        rpc_workers=tuple(n for n, _ in workers))
    node = Node(cfg, node_id)
    engine = Engine(settings)
    node.add(engine)
    node.add(Router(llm, engine, lambda: []))
    app = create_app(node, [_bearer(token)])
    openai_api.setup(app)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = getattr(site, "_server", None)
    port = int(server.sockets[0].getsockname()[1]) if server is not None else 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    try:
        for component in node.components.values():
            await component.start()
    except Exception as exc:
        log.exception("the model host could not load the model")
        _say(reply, {"error": str(exc) or type(exc).__name__})
        await runner.cleanup()
        return 1
    node.ready, node.phase = True, "ready"
    model = engine.describe()
    _say(reply, {"port": port, "load_s": round(time.monotonic() - started, 3),
                 "placement": model.get("placement"), "context": model.get("context")})
    await stop.wait()
    node.stopping = True
    for component in reversed(list(node.components.values())):
        await component.stop()
    await runner.cleanup()
    return 0


def _bearer(token: str) -> Any:
    from aiohttp import web

    from appliance.web.errors import json_error

    want = f"Bearer {token}".encode()

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        got = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(got, want):
            return json_error(401, "this is the model host of a hybrid-agent daemon, for "
                                   "that daemon only", code="unauthorized")
        return await handler(request)

    return guard


def _say(reply: TextIO, message: dict[str, Any]) -> None:
    reply.write(json.dumps(message) + "\n")
    reply.flush()


if __name__ == "__main__":
    sys.exit(main())
