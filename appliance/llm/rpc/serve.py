"""The RPC worker child: ggml's RPC server on 127.0.0.1, and nowhere else, until killed.

``python -m appliance.llm.rpc.serve --parent PID --port N --threads T``, started
by :class:`appliance.llm.rpc.worker.RpcWorker`. The address is not an option:
ggml's RPC server has no authentication (llama.cpp: "never run the RPC server
on an open network"), so only the worker's TLS link, on the same box, talks to it.
It exposes this box's CPU device (its memory and threads) to one client at a time.
"""

from __future__ import annotations

import argparse
import os
import sys

from appliance.llm.rpc.process import die_with_parent

HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m appliance.llm.rpc.serve",
                                description="ggml's RPC server on loopback (a worker's child)")
    p.add_argument("--parent", type=int, required=True, help="the daemon's pid")
    p.add_argument("--port", type=int, required=True, help="loopback TCP port")
    p.add_argument("--threads", type=int, required=True, help="CPU threads for the graphs")
    args = p.parse_args(argv)
    die_with_parent(args.parent)
    # ggml prints its banner and a line per client with printf: into stderr, the journal.
    os.dup2(2, 1)
    from appliance.llm.rpc import ggml

    try:
        ggml.start_server(f"{HOST}:{args.port}", max(1, args.threads), [ggml.cpu_device()])
    except ggml.RpcUnavailable as exc:
        print(f"rpc worker: {exc}", file=sys.stderr)
        return 2
    print(f"rpc worker: ggml's RPC server stopped (is {HOST}:{args.port} taken?)",
          file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
