"""A hostile client on the LAN, run inside a namespace (``ip netns exec NS python -m ...``).

``hold N HOST PORT``: open N connections that send nothing, one after another,
and report as one JSON line how many were answered 503 at once, closed, or
are still held; then keep them open until stdin closes. The red team's 1100
idle sockets.

``soak HOST PORT SECONDS SEED [TOKEN]``: the red team's findings at random for
SECONDS (bench/soak.py), bounded: at most :data:`SOAK_RATE` new actions a
second and :data:`SOAK_CONCURRENCY` at once, over HTTPS as the paired device
TOKEN names; one JSON line at the end with,
per action, how often it ran and what the server answered.
"""

from __future__ import annotations

import json
import resource
import socket
import sys

CONNECT_TIMEOUT_S = 5.0
#: How long a held connection is watched for an immediate refusal.
ANSWER_WAIT_S = 0.05


def hold(count: int, host: str, port: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 64)), hard))
    held: list[socket.socket] = []
    refused = closed = failed = 0
    for _ in range(count):
        try:
            s = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        except OSError:
            failed += 1
            continue
        s.settimeout(ANSWER_WAIT_S)
        try:
            data = s.recv(4096)
        except TimeoutError:
            held.append(s)  # nothing said: the server keeps it (until its idle timeout)
            continue
        except OSError:
            data = b""
        if data.startswith(b"HTTP/1.1 503"):
            refused += 1
        else:
            closed += 1
        s.close()
    print(json.dumps({"held": len(held), "refused": refused, "closed": closed,
                      "failed": failed}), flush=True)
    sys.stdin.read()  # until the test closes our stdin
    still_open = 0
    for s in held:
        s.settimeout(0.0)
        try:
            still_open += s.recv(1) != b""
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
        s.close()
    print(json.dumps({"still_open": still_open}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "hold":
        hold(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) in (6, 7) and sys.argv[1] == "soak":
        from tests.hostile import soakactions

        soakactions.TOKEN = sys.argv[6] if len(sys.argv) == 7 else ""
        print(json.dumps(soakactions.soak(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
                                          int(sys.argv[5]))), flush=True)
    else:
        sys.exit("usage: python -m tests.hostile.lanclient hold N HOST PORT | "
                 "soak HOST PORT SECONDS SEED [TOKEN]")
