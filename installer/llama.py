"""llama-cpp-python with llama.cpp's RPC backend (a model split over several boxes, docs/rpc.md):
the build environment pip gets, and a rebuild when the installed one lacks the backend."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from installer import InstallError, Result, Say
from installer.commands import PIP_TIMEOUT_S, run

# llama.cpp's RPC backend, for a model split over several boxes (docs/rpc.md), added to the
# user's own CMAKE_ARGS; its RDMA transport stays out: it would bypass the encrypted link.
LLAMA_CMAKE_ARGS = "-DGGML_RPC=ON -DGGML_RPC_RDMA=OFF"
RPC_CHECK = ("import sys; from appliance.llm.rpc.ggml import supports_rpc; "
             "sys.exit(0 if supports_rpc() else 3)")
RPC_CHECK_TIMEOUT_S = 60


def build_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment pip builds llama-cpp-python in: CMAKE_ARGS with the RPC backend."""
    env = dict(environ)
    env["CMAKE_ARGS"] = f"{env.get('CMAKE_ARGS', '')} {LLAMA_CMAKE_ARGS}".strip()
    return env


def rebuild_with_rpc(py: Path, env: dict[str, str], result: Result, say: Say, *,
               offline: bool) -> None:
    """llama-cpp-python needs its RPC backend; pip's wheel cache (which does not know
    CMAKE_ARGS) may have handed back an older build without it: build it again."""
    check = subprocess.run([str(py), "-c", RPC_CHECK], capture_output=True, check=False,
                           timeout=RPC_CHECK_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if check.returncode == 0:
        return
    if offline:
        say("python: warning: the wheelhouse's llama-cpp-python has no RPC backend, so this "
            "box cannot split a model with others (llm.rpc_serve, llm.rpc_workers); build "
            "it with `make llama-wheel` (docs/operations.md)")
        return
    version = run([str(py), "-c", "import llama_cpp; print(llama_cpp.__version__)"],
                  "reading llama-cpp-python's version").strip()
    say(f"python: building llama-cpp-python {version} again, with its RPC backend (minutes)")
    try:
        run([str(py), "-m", "pip", "install", "--progress-bar", "on", "--force-reinstall",
             "--no-deps", "--no-cache-dir", "--no-binary", "llama-cpp-python",
             f"llama-cpp-python=={version}"],
            "rebuilding llama-cpp-python", stream=True, timeout=PIP_TIMEOUT_S, env=env)
    except InstallError as exc:  # e.g. an index with wheels only: the box works without RPC
        say(f"python: warning: {str(exc).splitlines()[0]}; this box works, but cannot "
            "split a model with others (docs/rpc.md)")
        return
    result.changes.append("llama-cpp-python rebuilt with its RPC backend")
