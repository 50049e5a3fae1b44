"""HardwareProfile -> tier, and the settings each tier starts from.

The rule (docs/tiers.md): ``core`` with >= 16 cores and >= 48 GiB, or an
NVIDIA GPU with >= 16 GiB; ``mid`` with >= 4 cores and >= 12 GiB; else ``edge``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from appliance.hardware import HardwareProfile

CORE_MIN_CORES = 16
CORE_MIN_MEMORY_GIB = 48
CORE_MIN_GPU_GIB = 16
MID_MIN_CORES = 4
MID_MIN_MEMORY_GIB = 12


@dataclass(frozen=True)
class TierChoice:
    """A tier and the reason it was chosen."""

    tier: str
    reason: str


def choose_tier(hw: HardwareProfile) -> TierChoice:
    """Apply the tier rule to a hardware profile."""
    mem = hw.memory_gib
    have = f"{hw.cores} cores, {mem:.1f} GiB"
    if hw.gpu_memory_gib >= CORE_MIN_GPU_GIB:
        return TierChoice("core", f"NVIDIA GPU with {hw.gpu_memory_gib:.0f} GiB "
                                  f"(>= {CORE_MIN_GPU_GIB} GiB)")
    if hw.cores >= CORE_MIN_CORES and mem >= CORE_MIN_MEMORY_GIB:
        return TierChoice("core", f"{have} (>= {CORE_MIN_CORES} cores and "
                                  f">= {CORE_MIN_MEMORY_GIB} GiB)")
    if hw.cores >= MID_MIN_CORES and mem >= MID_MIN_MEMORY_GIB:
        return TierChoice("mid", f"{have} (>= {MID_MIN_CORES} cores and >= "
                                 f"{MID_MIN_MEMORY_GIB} GiB, below core's {CORE_MIN_CORES} "
                                 f"cores and {CORE_MIN_MEMORY_GIB} GiB)")
    return TierChoice("edge", f"{have} (below mid's {MID_MIN_CORES} cores and "
                              f"{MID_MIN_MEMORY_GIB} GiB)")


# What each tier changes from the dataclass defaults in appliance.config.
_OVERRIDES: dict[str, dict[str, Any]] = {
    "edge": {
        "llm": {"mode": "remote", "serve": False, "slots": 2},
        "tools": {"serve": False},
        "world": {"mode": "local", "serve": False},
    },
    "mid": {
        "llm": {"mode": "auto", "serve": True, "slots": 4},
        "tools": {"serve": True},
        "world": {"mode": "local", "serve": True},
    },
    "core": {
        "llm": {"mode": "local", "serve": True, "slots": 8},
        "tools": {"serve": True},
        "world": {"mode": "local", "serve": True},
    },
}

# Which optional parts of the package a tier installs (pyproject extras).
EXTRAS = {"edge": ("voice",), "mid": ("voice", "llm"), "core": ("voice", "llm")}


def tier_overrides(tier: str) -> dict[str, Any]:
    """The tier's changes to the defaults, as a config mapping (a copy)."""
    return copy.deepcopy(_OVERRIDES[tier])


def runs_llm(tier: str) -> bool:
    """Whether a tier hosts an LLM in-process by default."""
    return _OVERRIDES[tier]["llm"]["mode"] in ("local", "auto")
