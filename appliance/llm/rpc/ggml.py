"""The few ggml functions the RPC backend needs, from the libggml llama-cpp-python loaded.

llama-cpp-python 0.3.36 binds none of them (its ``rpc_servers`` argument is
ignored: upstream issue 1914), so they are bound here with ctypes against the
very library its ``llama_cpp`` module loaded: same build, same RPC protocol
version on both ends. Everything here blocks; callers use a thread (or a child).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError

RPC_REGISTRY = b"RPC"
DEVICE_CPU = 0  # enum ggml_backend_dev_type: GGML_BACKEND_DEVICE_TYPE_CPU
REBUILD_HINT = ("llama-cpp-python was built without llama.cpp's RPC backend; rebuild it "
                "with CMAKE_ARGS=\"-DGGML_RPC=ON\" (`make llama-wheel`, and install.sh, do)")


class RpcUnavailable(ApplianceError, RuntimeError):
    """This llama-cpp-python build has no RPC backend (the message says how to get one)."""


@dataclass(frozen=True)
class Device:
    """One ggml device: its name, what it says it is, and its memory in bytes."""

    name: str
    description: str
    free: int
    total: int


_lib: Any = None


def library() -> Any:
    """libggml as loaded by llama_cpp, with the prototypes used here declared."""
    global _lib
    if _lib is not None:
        return _lib
    import llama_cpp

    path = Path(llama_cpp.__file__).parent / "lib" / "libggml.so"
    lib = ctypes.CDLL(str(path))  # already loaded by llama_cpp: the same handle
    vp, cp, sz = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
    for name, res, args in (
            ("ggml_backend_reg_by_name", vp, [cp]),
            ("ggml_backend_reg_get_proc_address", vp, [vp, cp]),
            ("ggml_backend_reg_dev_count", sz, [vp]),
            ("ggml_backend_reg_dev_get", vp, [vp, sz]),
            ("ggml_backend_dev_by_type", vp, [ctypes.c_int]),
            ("ggml_backend_dev_name", cp, [vp]),
            ("ggml_backend_dev_description", cp, [vp]),
            ("ggml_backend_dev_buffer_type", vp, [vp]),
            ("ggml_backend_dev_memory", None, [vp, ctypes.POINTER(sz), ctypes.POINTER(sz)])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    _lib = lib
    return lib


def rpc_registry() -> int:
    """The RPC backend's registry; RpcUnavailable when this build has none."""
    reg = library().ggml_backend_reg_by_name(RPC_REGISTRY)
    if not reg:
        raise RpcUnavailable(REBUILD_HINT)
    return int(reg)


def supports_rpc() -> bool:
    try:
        rpc_registry()
    except (RpcUnavailable, ImportError, OSError):
        return False
    return True


def add_server(endpoint: str) -> list[int]:
    """Register the RPC server at ``host:port``; its devices (ggml_backend_dev_t).

    ggml connects at once; an endpoint that does not answer the RPC handshake
    aborts the process (GGML_ABORT), which is why only a child calls this.
    """
    lib = library()
    fn = _proc(rpc_registry(), b"ggml_backend_rpc_add_server",
               ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p))
    reg = fn(endpoint.encode())
    if not reg:
        raise RuntimeError(f"the RPC server at {endpoint} offers no device")
    return [int(lib.ggml_backend_reg_dev_get(reg, i))
            for i in range(lib.ggml_backend_reg_dev_count(reg))]


def cpu_device() -> int:
    dev = library().ggml_backend_dev_by_type(DEVICE_CPU)
    if not dev:
        raise RuntimeError("ggml has no CPU device")
    return int(dev)


def buffer_type(dev: int) -> int:
    """The device's default buffer type (ggml_backend_buffer_type_t)."""
    return int(library().ggml_backend_dev_buffer_type(dev))


def describe(dev: int) -> Device:
    lib = library()
    free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
    return Device(name=(lib.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
                  description=(lib.ggml_backend_dev_description(dev) or b"").decode(
                      errors="replace"),
                  free=int(free.value), total=int(total.value))


def start_server(endpoint: str, threads: int, devices: list[int]) -> None:
    """Serve ``devices`` over ggml RPC at ``endpoint``; returns only when binding failed.

    ggml's server takes one client at a time and never stops by itself: it is
    run in a child process (appliance.llm.rpc.serve) that is killed to stop it.
    """
    fn = _proc(rpc_registry(), b"ggml_backend_rpc_start_server",
               ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t,
                                ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)))
    arr = (ctypes.c_void_p * len(devices))(*devices)
    fn(endpoint.encode(), None, threads, len(devices), arr)


def device_array(devices: list[int]) -> Any:
    """A NULL-terminated ggml_backend_dev_t array (llama_model_params.devices); keep it alive."""
    return (ctypes.c_void_p * (len(devices) + 1))(*devices, None)


def _proc(reg: int, name: bytes, proto: Any) -> Any:
    addr = library().ggml_backend_reg_get_proc_address(reg, name)
    if not addr:
        raise RpcUnavailable(f"ggml's RPC backend lacks {name.decode()}; " + REBUILD_HINT)
    return proto(addr)
