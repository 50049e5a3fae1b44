"""Where a split model's layers go: planned from shares, read back from llama.cpp's log.

llama.cpp keeps the first ``n_layer + 1 - n_gpu_layers`` layers (and always the
input embeddings) on the CPU of the box that loads the model and spreads the
rest, the output layer last, over ``llama_model_params.devices`` in proportion
to ``tensor_split``. The output layer's weights are kept on this box all the
same (``tensor_buft_overrides``, :data:`OUTPUT_HEAD`): otherwise every token's
logits, a float per vocabulary entry (196 KB for SmolLM2, 513 KB for Llama 3),
would cross the link, where now one hidden state does. :func:`plan` turns shares
(this box first, then each worker; free memory by default) into those numbers.
:class:`Offload` does it for a load: it registers the workers' RPC servers
(through the link's local ends), sets the model parameters, and listens to
llama.cpp's log during the load, whose lines say where each layer and tensor
went and how big each buffer is: what ``/api/status`` shows is what llama.cpp
did, not what we hoped it would do. Blocking; runs in the model host child
(appliance.llm.rpc.host).
"""

from __future__ import annotations

import ctypes
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAYER_LINE = re.compile(r"layer +(\d+) assigned to device ([^,\s]+)")
BUFFER_LINE = re.compile(r"^\w+: +(\S+) (model|KV|compute) buffer size = +([\d.]+) MiB")
RPC_BUFFER = re.compile(r"^RPC\d+\[(.+)\]$")
OVERRIDE_LINE = re.compile(r"^tensor (\S+) \(.*\) buffer type overridden to (\S+)")
# The output head: its norm and its matrix (tied models reuse the token embeddings).
OUTPUT_HEAD = rb"^(output|output_norm)\.(weight|bias)$|^token_embd\.weight$"
LOCAL = "local"
GGML_LOG_WARN = 3  # enum ggml_log_level of this llama.cpp: NONE, DEBUG, INFO, WARN, ERROR, CONT
GGML_LOG_ERROR = 4
GGML_LOG_CONT = 5
MAX_LOG_LINES = 100_000


@dataclass(frozen=True)
class Plan:
    """llama_model_params for a split: layers off this box, and their split over workers."""

    gpu_layers: int
    tensor_split: tuple[float, ...]


def plan(n_layer: int, shares: list[float] | tuple[float, ...]) -> Plan:
    """The split of ``n_layer`` layers (+ the output layer) by ``shares`` (this box first).

    ValueError when a share is negative or all are zero, or no worker is named.
    """
    if len(shares) < 2:
        raise ValueError("a split needs this box's share and at least one worker's")
    if any(s < 0 for s in shares) or sum(shares) <= 0:
        raise ValueError(f"shares must be >= 0 and not all 0, found {list(shares)}")
    off = max(0, min(n_layer, round(n_layer * sum(shares[1:]) / sum(shares))))
    # llama.cpp counts the output layer as the last one offloaded (its weights stay here).
    return Plan(gpu_layers=off + 1 if off else 0, tensor_split=tuple(shares[1:]))


def ranges(numbers: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0-2,5,7-8"."""
    out: list[str] = []
    for n in sorted(numbers):
        if out and out[-1].split("-")[-1] == str(n - 1):
            out[-1] = out[-1].split("-")[0] + f"-{n}"
        else:
            out.append(str(n))
    return ",".join(out)


class LoadLog:
    """The lines of llama.cpp's log that say where a model went."""

    def __init__(self) -> None:
        self.layers: dict[int, str] = {}  # layer -> device name
        self.buffers: list[tuple[str, str, float]] = []  # (buffer, kind, MiB)
        self.head_kept = False  # the output head's weights overridden to this box's CPU
        self._partial = ""
        self._lines = 0

    def feed(self, text: str) -> None:
        self._partial += text
        while "\n" in self._partial and self._lines < MAX_LOG_LINES:
            line, self._partial = self._partial.split("\n", 1)
            self._lines += 1
            m = LAYER_LINE.search(line)
            if m:
                self.layers[int(m.group(1))] = m.group(2)
                continue
            m = BUFFER_LINE.match(line.strip())
            if m:
                self.buffers.append((m.group(1), m.group(2), float(m.group(3))))
                continue
            m = OVERRIDE_LINE.match(line.strip())
            if m and m.group(1) in ("output.weight", "token_embd.weight") \
                    and not m.group(2).startswith("RPC"):
                self.head_kept = True

    def report(self, n_layer: int, devices: dict[str, str], endpoints: dict[str, str]
               ) -> list[dict[str, Any]]:
        """One entry per place (this box, then each worker): its layers and buffers.

        ``devices``: ggml device name (RPC0) -> worker; ``endpoints``: RPC endpoint
        (127.0.0.1:port) -> worker.
        """
        places: dict[str, dict[str, Any]] = {LOCAL: _place(LOCAL)}
        for worker in [*endpoints.values(), *devices.values()]:
            places.setdefault(worker, _place(worker))
        for layer, device in sorted(self.layers.items()):
            where = devices.get(device, LOCAL)
            if layer >= n_layer:  # the output layer: its weights decide where it runs
                places[LOCAL if self.head_kept else where]["output"] = True
                continue
            entry = places.setdefault(where, _place(where))
            entry["devices"].add(device)
            entry["layers"].append(layer)
        for name, kind, mib in self.buffers:
            m = RPC_BUFFER.match(name)
            where = endpoints.get(m.group(1), LOCAL) if m else LOCAL
            entry = places.setdefault(where, _place(where))
            key = f"{kind.lower()}_mib"
            entry[key] = round(entry[key] + mib, 2)
        out = []
        for entry in places.values():
            entry["count"] = len(entry["layers"])
            entry["layers"] = ranges(entry["layers"])
            entry["devices"] = sorted(entry["devices"])
            out.append(entry)
        return out


class Offload:
    """One split load: register the workers, set the parameters, read where layers went."""

    def __init__(self, model_path: Path, endpoints: tuple[str, ...],
                 shares: tuple[float, ...], workers: tuple[str, ...] = ()) -> None:
        from appliance.llm.rpc import ggml

        if len(shares) != len(endpoints) + 1:
            raise ValueError(f"{len(endpoints)} RPC endpoints need {len(endpoints) + 1} "
                             f"shares, found {len(shares)}")
        self.n_layer = layer_count(model_path)
        self.plan = plan(self.n_layer, shares)
        names = workers or endpoints
        self.endpoints = dict(zip(endpoints, names, strict=True))
        self.devices: dict[str, str] = {}
        devs: list[int] = []
        for endpoint, worker in self.endpoints.items():
            for dev in ggml.add_server(endpoint):
                self.devices[ggml.describe(dev).name] = worker
                devs.append(dev)
        self._devices = ggml.device_array(devs)
        # One weight per device: a worker's share over its devices (one CPU each, normally).
        per_dev: list[float] = []
        for endpoint, share in zip(endpoints, shares[1:], strict=True):
            mine = [d for d, w in self.devices.items() if w == self.endpoints[endpoint]]
            per_dev += [share / max(1, len(mine))] * len(mine)
        # llama.cpp copies llama_max_devices() floats from this pointer.
        import llama_cpp as lc

        size = max(len(per_dev), int(lc.llama_max_devices()))
        self._tensor_split = (ctypes.c_float * size)(*per_dev)
        self._overrides = (_BuftOverride * 2)(
            _BuftOverride(OUTPUT_HEAD, ggml.buffer_type(ggml.cpu_device())), _BuftOverride())
        self.log = LoadLog()
        self._callback: Any = None

    def apply(self, mparams: Any) -> None:
        """Point ``mparams`` at the workers' devices and start listening to the log."""
        import llama_cpp as lc

        mparams.devices = ctypes.cast(self._devices, ctypes.c_void_p)
        mparams.n_gpu_layers = self.plan.gpu_layers
        mparams.tensor_split = ctypes.cast(self._tensor_split, ctypes.POINTER(ctypes.c_float))
        mparams.tensor_buft_overrides = ctypes.cast(self._overrides, ctypes.c_void_p)

        last = [0]

        @lc.llama_log_callback
        def callback(level: int, text: bytes, _user: Any) -> None:
            message = text.decode("utf-8", errors="replace")
            self.log.feed(message)
            level = last[0] if level == GGML_LOG_CONT else level
            last[0] = level
            if level in (GGML_LOG_WARN, GGML_LOG_ERROR):
                print(message, end="", file=sys.stderr, flush=True)

        self._callback = callback  # ctypes keeps no reference of its own
        lc.llama_log_set(callback, ctypes.c_void_p(0))

    def report(self) -> dict[str, Any]:
        """Where the layers went (from the log) and the plan they came from."""
        return {"n_layer": self.n_layer, "gpu_layers": self.plan.gpu_layers,
                "tensor_split": list(self.plan.tensor_split),
                "places": self.log.report(self.n_layer, self.devices, self.endpoints)}


class _BuftOverride(ctypes.Structure):
    """struct llama_model_tensor_buft_override (llama-cpp-python does not export it)."""

    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def layer_count(model_path: Path) -> int:
    """The model's layer count (``<arch>.block_count``), from a vocabulary-only load,
    which reads the GGUF metadata and no weights."""
    import llama_cpp as lc

    params = lc.llama_model_default_params()
    params.vocab_only = True
    model = lc.llama_model_load_from_file(str(model_path).encode(), params)
    if not model:
        raise ValueError(f"llama.cpp cannot read {model_path} (not a GGUF model?)")
    try:
        arch = _meta(lc, model, b"general.architecture")
        count = _meta(lc, model, arch + b".block_count")
    finally:
        lc.llama_model_free(model)
    if not count.isdigit() or int(count) <= 0:
        raise ValueError(f"{model_path} does not say how many layers it has")
    return int(count)


def _meta(lc: Any, model: Any, key: bytes) -> bytes:
    buf = ctypes.create_string_buffer(256)
    n = lc.llama_model_meta_val_str(model, key, buf, len(buf))
    return buf.value if n >= 0 else b""


def _place(name: str) -> dict[str, Any]:
    return {"where": name, "devices": set(), "layers": [], "output": False,
            "model_mib": 0.0, "kv_mib": 0.0, "compute_mib": 0.0}
