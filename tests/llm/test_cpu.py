"""llm.weight_repack: auto turns llama.cpp's weight repacking off wherever AMX is in play."""

from __future__ import annotations

from pathlib import Path

from appliance.config import build
from appliance.llm import cpu

SAPPHIRE_RAPIDS = "flags\t\t: fpu sse avx512f avx512_vnni amx_bf16 avx512_fp16 amx_tile amx_int8\n"
ZEN4 = "flags\t\t: fpu sse avx2 avx512f avx512_vnni\n"
AARCH64 = "Features\t: fp asimd evtstrm crc32 cpuid\n"
NO_AMX_BUILD = "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | OPENMP = 1 | REPACK = 1 |"
AMX_BUILD = "CPU : SSE3 = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 | REPACK = 1 |"


def _flags(tmp_path: Path, text: str) -> set[str]:
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\n" + text + "\nprocessor\t: 1\n" + text)
    return cpu.cpu_flags(path)


def test_auto_is_off_on_a_cpu_with_amx(tmp_path: Path) -> None:
    repack, why = cpu.resolve_weight_repack("auto", NO_AMX_BUILD,
                                            _flags(tmp_path, SAPPHIRE_RAPIDS))
    assert repack is False
    assert "amx_int8" in why and "20824" in why


def test_auto_is_off_when_the_build_has_amx_even_if_cpuinfo_is_hidden(tmp_path: Path) -> None:
    # Under the hardened unit /proc/cpuinfo may be unreadable: the build's own report counts.
    assert cpu.cpu_flags(tmp_path / "missing") == set()
    repack, why = cpu.resolve_weight_repack("auto", AMX_BUILD, set())
    assert repack is False and "built with AMX" in why


def test_auto_is_on_without_amx(tmp_path: Path) -> None:
    assert cpu.resolve_weight_repack("auto", NO_AMX_BUILD, _flags(tmp_path, ZEN4))[0] is True
    assert cpu.resolve_weight_repack("auto", NO_AMX_BUILD, _flags(tmp_path, AARCH64))[0] is True


def test_explicit_settings_win(tmp_path: Path) -> None:
    amx = _flags(tmp_path, SAPPHIRE_RAPIDS)
    assert cpu.resolve_weight_repack("on", AMX_BUILD, amx)[0] is True
    assert cpu.resolve_weight_repack("off", NO_AMX_BUILD, set())[0] is False


def test_the_config_takes_yaml_on_and_off_as_words() -> None:
    # PyYAML reads a bare `off` as False: the key still means the word.
    assert build({"llm": {"weight_repack": False}}).llm.weight_repack == "off"
    assert build({"llm": {"weight_repack": True}}).llm.weight_repack == "on"
    assert build({}).llm.weight_repack == "auto"


def test_this_machines_llama_cpp_build_reports_its_features() -> None:
    info = cpu.system_info()
    assert "CPU :" in info
