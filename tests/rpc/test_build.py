"""llama-cpp-python is built with llama.cpp's RPC backend, here and by the installer."""

from __future__ import annotations

import os

import pytest

from appliance.llm.rpc import ggml
from installer.llama import LLAMA_CMAKE_ARGS, build_env, rebuild_with_rpc


def test_the_llama_cpp_python_in_use_has_the_rpc_backend():
    assert ggml.supports_rpc(), ggml.REBUILD_HINT
    names = [ggml.describe(ggml.cpu_device()).name]
    assert names == ["CPU"]


def test_the_installer_adds_rpc_to_the_users_own_cmake_args_and_keeps_rdma_out():
    env = build_env({"CMAKE_ARGS": "-DGGML_CUDA=ON", "PATH": "/usr/bin"})
    assert env["CMAKE_ARGS"] == "-DGGML_CUDA=ON -DGGML_RPC=ON -DGGML_RPC_RDMA=OFF"
    assert env["PATH"] == "/usr/bin"
    assert build_env({})["CMAKE_ARGS"] == LLAMA_CMAKE_ARGS


def test_doctor_checks_the_rpc_backend_only_where_the_config_uses_it(tmp_path, port):
    import yaml

    from tests.foundation.test_cli import cli

    for llm, expected in (({"rpc_serve": True}, "OK"), ({}, None)):
        path = tmp_path / "doctor.yaml"
        path.write_text(yaml.safe_dump({
            "node": {"state_dir": str(tmp_path), "tier": "mid"},
            "http": {"port": port, "host": "127.0.0.1"}, "llm": {"mode": "off", **llm}}))
        out = cli("doctor", "--config", str(path)).stdout
        rpc = [line for line in out.splitlines() if line.split()[1:2] == ["rpc"]]
        if expected is None:
            assert rpc == [], out
        else:
            assert len(rpc) == 1 and rpc[0].startswith(expected), out
            assert "RPC backend is built in" in rpc[0]


# Stands in for a venv's python (a real rebuild compiles llama.cpp for minutes): the RPC
# check says "no RPC" (exit 3) until pip "rebuilds", which fails when FAIL_PIP is set.
FAKE_VENV_PYTHON = """#!/bin/sh
log="$(dirname "$0")/calls"
echo "$*" >> "$log"
case "$*" in
  *supports_rpc*) [ -f "$(dirname "$0")/rebuilt" ] && exit 0 || exit 3 ;;
  *__version__*) echo 0.3.36 ;;
  *"pip install"*) [ -n "$FAIL_PIP" ] && { echo "ERROR: no sdist on this index"; exit 1; }
                   echo "$CMAKE_ARGS" > "$(dirname "$0")/cmake_args"
                   touch "$(dirname "$0")/rebuilt" ;;
esac
"""


@pytest.mark.parametrize("offline", [False, True])
def test_the_installer_rebuilds_llama_without_rpc_or_says_why_it_cannot(tmp_path, offline):
    from installer import Result

    py = tmp_path / "python"
    py.write_text(FAKE_VENV_PYTHON)
    py.chmod(0o755)
    said: list[str] = []
    result = Result()
    rebuild_with_rpc(py, build_env({}), result, said.append, offline=offline)
    if offline:  # nothing to build from: the box works without RPC, and is told so
        assert "has no RPC backend" in said[-1] and result.changes == []
        assert "pip" not in (tmp_path / "calls").read_text()
        return
    calls = (tmp_path / "calls").read_text()
    assert "--force-reinstall --no-deps --no-cache-dir --no-binary llama-cpp-python " \
        "llama-cpp-python==0.3.36" in calls
    assert (tmp_path / "cmake_args").read_text().strip() == LLAMA_CMAKE_ARGS
    assert result.changes == ["llama-cpp-python rebuilt with its RPC backend"]


def test_a_failed_rebuild_leaves_a_working_box_and_a_warning(tmp_path, monkeypatch):
    from installer import Result

    monkeypatch.setenv("FAIL_PIP", "1")
    py = tmp_path / "python"
    py.write_text(FAKE_VENV_PYTHON)
    py.chmod(0o755)
    said: list[str] = []
    result = Result()
    rebuild_with_rpc(py, build_env(dict(os.environ)), result, said.append, offline=False)
    assert said[-1].startswith("python: warning: rebuilding llama-cpp-python failed")
    assert "cannot split a model with others" in said[-1] and result.changes == []
