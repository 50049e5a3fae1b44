"""What llama.cpp's CPU backend will do on this box, decided before a model is loaded.

llama.cpp repacks weights into CPU-specific layouts ("extra buffer types"). Its AMX
layout (Intel Sapphire/Emerald/Granite Rapids Xeons) crashes at the first decode
of a batch: SIGSEGV (ggml-org/llama.cpp#20824, open; llama-server needs
``--no-repack`` there), or on another host (a Firecracker VM, whose kernel does
grant AMX's tile state) SIGILL at the first ``tileloadd`` of the same
``ggml_backend_amx_mul_mat``. So ``llm.weight_repack: auto`` turns repacking off
wherever AMX is in play. Both signs count: the llama.cpp build reports AMX (it
was compiled for an AMX CPU, so it only runs on one), or the CPU's flags list it.
"""

from __future__ import annotations

from pathlib import Path

AMX_FLAGS = ("amx_int8", "amx_tile", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")
MAX_CPUINFO_BYTES = 4 * 1024 * 1024


def system_info() -> str:
    """llama.cpp's own feature line ("CPU : SSE3 = 1 | ... | AMX_INT8 = 1 | ...")."""
    import llama_cpp as lc

    return bytes(lc.llama_print_system_info()).decode(errors="replace")


def build_id(info: str | None = None) -> str:
    """Which llama.cpp build this is: the llama-cpp-python version and its features."""
    import hashlib

    import llama_cpp

    info = system_info() if info is None else info
    return (f"llama-cpp-python {llama_cpp.__version__}; "
            + hashlib.sha256(info.encode()).hexdigest()[:12])


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The first processor's flags from /proc/cpuinfo; empty when unreadable (a sandbox)."""
    from appliance.hardware import parse_cpuinfo

    try:
        with open(cpuinfo, "rb") as fh:
            text = fh.read(MAX_CPUINFO_BYTES).decode(errors="replace")
    except OSError:
        return set()
    return set(parse_cpuinfo(text)[1])


def amx_reason(info: str, flags: set[str]) -> str:
    """Why AMX applies here ("" when it does not)."""
    if "AMX_INT8 = 1" in info:
        return "llama.cpp was built with AMX"
    found = sorted(f for f in AMX_FLAGS if f in flags)
    if found:
        return "the CPU has " + ", ".join(found)
    return ""


def resolve_weight_repack(setting: str, info: str, flags: set[str]) -> tuple[bool, str]:
    """``llm.weight_repack`` (auto/on/off) -> (repack?, the reason in words)."""
    if setting == "on":
        return True, "llm.weight_repack is on"
    if setting == "off":
        return False, "llm.weight_repack is off"
    reason = amx_reason(info, flags)
    if reason:
        return False, f"off: {reason}, whose repacking crashes llama.cpp (issue 20824)"
    return True, "on: no AMX on this CPU"
