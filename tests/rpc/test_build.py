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
