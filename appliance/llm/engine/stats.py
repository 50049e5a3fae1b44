"""The engine's counters and latency histograms, for /api/status and /metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

# Outcomes of an admitted request (a refused one is counted as "busy" or "invalid").
OUTCOMES = ("completed", "cancelled", "error")
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)
TPOT_BUCKETS = (0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0)


class EngineStats:
    """Counters (a plain dict, as /api/status shows them) and two histograms.

    Written from the event loop and the worker thread; each update is one locked step.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts = {"requests": 0, "completed": 0, "cancelled": 0, "error": 0,
                       "busy": 0, "invalid": 0, "prompt_tokens": 0,
                       "cached_prompt_tokens": 0, "completion_tokens": 0,
                       "decode_calls": 0, "max_seqs_per_decode": 0, "embeddings": 0}
        # registry=None: these are collected by the node's collector, not a global one.
        self.ttft = Histogram("hybrid_agent_llm_time_to_first_token_seconds",
                              "From admission to the first generated token",
                              buckets=TTFT_BUCKETS, registry=None)
        self.tpot = Histogram("hybrid_agent_llm_time_per_output_token_seconds",
                              "Between two generated tokens of one sequence",
                              buckets=TPOT_BUCKETS, registry=None)

    def __getitem__(self, key: str) -> int:
        return self.counts[key]

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def peak(self, key: str, value: int) -> None:
        with self._lock:
            if value > self.counts[key]:
                self.counts[key] = value

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def families(self, model: str, busy_slots: int, slots: int,
                 queued: int) -> Iterator[Metric]:
        """Prometheus metric families of this engine, labelled with its model."""
        c = self.snapshot()
        requests = CounterMetricFamily("hybrid_agent_llm_requests",
                                       "LLM requests by outcome", labels=["model", "outcome"])
        for outcome in (*OUTCOMES, "busy", "invalid"):
            requests.add_metric([model, outcome], c[outcome])
        yield requests
        tokens = CounterMetricFamily("hybrid_agent_llm_tokens",
                                     "Tokens by kind (cached prompt tokens were not decoded)",
                                     labels=["model", "kind"])
        for kind, key in (("prompt", "prompt_tokens"), ("cached", "cached_prompt_tokens"),
                          ("completion", "completion_tokens")):
            tokens.add_metric([model, kind], c[key])
        yield tokens
        yield _counter("hybrid_agent_llm_decode_calls", "llama_decode calls (batched steps)",
                       model, c["decode_calls"])
        yield _counter("hybrid_agent_llm_embedding_inputs", "Texts embedded", model,
                       c["embeddings"])
        yield _gauge("hybrid_agent_llm_slots_busy", "Sequences holding a slot", model,
                     busy_slots)
        yield _gauge("hybrid_agent_llm_slots", "Slots (llm.slots)", model, slots)
        yield _gauge("hybrid_agent_llm_queue_depth", "Requests waiting for a slot", model,
                     queued)
        for hist in (self.ttft, self.tpot):
            for family in hist.collect():
                yield _labelled(family, model)


def _counter(name: str, doc: str, model: str, value: float) -> Metric:
    family = CounterMetricFamily(name, doc, labels=["model"])
    family.add_metric([model], value)
    return family


def _gauge(name: str, doc: str, model: str, value: float) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=["model"])
    family.add_metric([model], value)
    return family


def _labelled(family: Metric, model: str) -> Metric:
    """A copy of a collected family with the model label on every sample."""
    out = Metric(family.name, family.documentation, family.type, family.unit)
    for sample in family.samples:
        labels: dict[str, Any] = {"model": model, **sample.labels}
        out.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
    return out
