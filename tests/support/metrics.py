"""Reading the Prometheus text format in tests."""

from __future__ import annotations


def samples(text: str) -> dict[str, float]:
    """name{labels sorted} -> value, from the text exposition format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if "{" in key:
            name, _, labels = key.partition("{")
            parts = sorted(labels.rstrip("}").split(","))
            key = name + "{" + ",".join(parts) + "}"
        out[key] = float(value)
    return out
