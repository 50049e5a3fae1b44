"""The in-process LLM: llama.cpp through llama-cpp-python's low-level API, continuously batched.

The parts: ``settings`` (from the config), ``model`` (load, tokenize, warm up,
embed), ``warmup`` (the record that explains a crash at the next start),
``prepare`` (request -> tokens and constraints), ``sequence`` (one request's
progress), ``sampling`` (each sequence's sampler), ``scheduler`` (the worker
thread's batching loop), ``stats`` (counters and histograms) and ``component``
(the Engine: Component and LLMClient).
"""

from appliance.llm.engine.component import LOAD_TIMEOUT_S, Engine, WarmupCrashed
from appliance.llm.engine.settings import EngineSettings

__all__ = ["LOAD_TIMEOUT_S", "Engine", "EngineSettings", "WarmupCrashed"]
