"""llama-cpp-python is built with llama.cpp's RPC backend, here and by the installer."""

from __future__ import annotations

from appliance.llm.rpc import ggml
from installer.apply import LLAMA_CMAKE_ARGS, llama_build_env


def test_the_llama_cpp_python_in_use_has_the_rpc_backend():
    assert ggml.supports_rpc(), ggml.REBUILD_HINT
    names = [ggml.describe(ggml.cpu_device()).name]
    assert names == ["CPU"]


def test_the_installer_adds_rpc_to_the_users_own_cmake_args_and_keeps_rdma_out():
    env = llama_build_env({"CMAKE_ARGS": "-DGGML_CUDA=ON", "PATH": "/usr/bin"})
    assert env["CMAKE_ARGS"] == "-DGGML_CUDA=ON -DGGML_RPC=ON -DGGML_RPC_RDMA=OFF"
    assert env["PATH"] == "/usr/bin"
    assert llama_build_env({})["CMAKE_ARGS"] == LLAMA_CMAKE_ARGS


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
