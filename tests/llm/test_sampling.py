"""Greedy sampling (temperature 0) reads the argmax of the logits row itself: the same
token llama.cpp's greedy sampler picks, step after step, on the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.llm import cpu
from appliance.llm.engine.model import Model, put
from appliance.llm.engine.sampling import SequenceSampler
from appliance.llm.engine.sequence import Prepared
from appliance.llm.engine.settings import EngineSettings
from tests.llm.conftest import THREADS

pytestmark = pytest.mark.model

STEPS = 48


def test_the_greedy_fast_path_picks_what_llama_cpps_greedy_sampler_picks(
        model_path: Path) -> None:
    import llama_cpp as lc

    repack, _ = cpu.resolve_weight_repack("auto", cpu.system_info(), cpu.cpu_flags())
    model = Model(EngineSettings(model_path=model_path, model_id=model_path.stem,
                                 context=512, slots=1, threads=THREADS), repack)
    tokens = model.tokenize("<|im_start|>user\nWrite a poem about the sea.<|im_end|>\n"
                            "<|im_start|>assistant\n")
    prep = Prepared(tokens=tokens, max_tokens=STEPS, stops=(), temperature=0.0, top_p=1.0,
                    seed=0, constraint=None)
    ours = SequenceSampler(model, prep)
    reference = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    lc.llama_sampler_chain_add(reference, lc.llama_sampler_init_greedy())
    batch = lc.llama_batch_init(len(tokens), 0, 1)
    try:
        step, picked, n_past = tokens, [], 0
        for _ in range(STEPS):
            for i, tok in enumerate(step):
                put(batch, i, tok, n_past + i, 0, i == len(step) - 1)
            batch.n_tokens = len(step)
            n_past += len(step)
            assert lc.llama_decode(model.ctx, batch) == 0
            fast = ours.sample(len(step) - 1)
            slow = int(lc.llama_sampler_sample(reference, model.ctx, len(step) - 1))
            assert fast == slow, (picked, fast, slow)
            picked.append(fast)
            step = [fast]
        assert len(set(picked)) > 5, picked  # a real text, not one token repeated
    finally:
        lc.llama_batch_free(batch)
        lc.llama_sampler_free(reference)
        ours.free()
        model.free()
