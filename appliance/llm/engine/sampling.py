"""Choosing each sequence's next token: its own sampler chain, grammar and log probabilities."""

from __future__ import annotations

import ctypes
import math
from typing import Any

from appliance.llm.chat import InvalidRequest
from appliance.llm.engine.model import Model
from appliance.llm.engine.sequence import Prepared

_TOKEN_DATA = [("id", "<i4"), ("logit", "<f4"), ("p", "<f4")]


class SequenceSampler:
    """The sampler chain of one sequence, and its grammar sampler kept apart."""

    def __init__(self, model: Model, prep: Prepared) -> None:
        import llama_cpp as lc

        self._model = model
        self._top = prep.logprobs
        self.chain: Any = None
        self.grammar: Any = None
        if prep.constraint is not None:
            self.grammar = lc.llama_sampler_init_grammar(
                model.vocab, prep.constraint.gbnf.encode(), b"root")
            if not self.grammar:
                raise InvalidRequest("the output constraint could not be compiled to a grammar")
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        self._greedy = prep.temperature <= 0
        if self._greedy:  # the chain then serves only a grammar's resampling
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_greedy())
        else:
            if prep.top_p < 1.0:
                lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(prep.top_p, 1))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(prep.temperature))
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(prep.seed))
        self.chain = chain
        self._candidates: Any = None

    def free(self) -> None:
        import llama_cpp as lc

        for attr in ("chain", "grammar"):
            sampler = getattr(self, attr)
            if sampler is not None:
                lc.llama_sampler_free(sampler)
                setattr(self, attr, None)

    def sample(self, index: int) -> int:
        """The next token from logits row ``index`` of the last decode."""
        import llama_cpp as lc

        if self.grammar is None:
            if self._greedy:
                # The first highest logit, as llama.cpp's greedy sampler picks it, without
                # the n_vocab candidate array it builds each step (0.1 ms of 13 a token).
                return int(self._model.logits(index).argmax())
            return int(lc.llama_sampler_sample(self.chain, self._model.ctx, index))
        return self._sample_constrained(index)

    def logprob(self, index: int, token: int) -> dict[str, Any]:
        """OpenAI's logprobs entry for ``token`` at row ``index``: the model's own
        distribution (softmax of the raw logits, before temperature and grammar)."""
        import numpy as np

        row = self._model.logits(index)
        peak = float(row.max())
        lse = peak + math.log(float(np.exp(row - peak, dtype=np.float64).sum()))
        entry = self._entry(token, float(row[token]) - lse)
        top: list[dict[str, Any]] = []
        if self._top > 0:
            k = min(self._top, len(row))
            best = np.argpartition(-row, k - 1)[:k]
            best = best[np.argsort(-row[best], kind="stable")]
            top = [self._entry(int(t), float(row[t]) - lse) for t in best]
        entry["top_logprobs"] = top
        return entry

    def _entry(self, token: int, logprob: float) -> dict[str, Any]:
        raw = self._model.piece(token)
        return {"token": raw.decode(errors="replace"), "logprob": max(logprob, -9999.0),
                "bytes": list(raw)}

    def _sample_constrained(self, index: int) -> int:
        """Sample freely, keep the token if the grammar allows it, else resample under it.

        Checking one token is cheap; running the grammar over the whole vocabulary
        every step made constrained decoding several times slower (llama-server does
        the same).
        """
        import llama_cpp as lc
        import numpy as np

        n_vocab = self._model.n_vocab
        logits = self._model.logits(index)
        if self._candidates is None:
            self._candidates = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        cand = self._candidates

        def candidates() -> Any:
            cand["id"] = np.arange(n_vocab, dtype=np.int32)
            cand["logit"] = logits
            cand["p"] = 0.0
            return lc.llama_token_data_array(
                data=cand.ctypes.data_as(lc.llama_token_data_p), size=n_vocab, selected=-1,
                sorted=False)

        full = candidates()
        lc.llama_sampler_apply(self.chain, ctypes.byref(full))
        tok = int(full.data[full.selected].id)
        one = (lc.llama_token_data * 1)(lc.llama_token_data(tok, 0.0, 0.0))
        check = lc.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        lc.llama_sampler_apply(self.grammar, ctypes.byref(check))
        if math.isinf(one[0].logit):
            full = candidates()
            lc.llama_sampler_apply(self.grammar, ctypes.byref(full))
            lc.llama_sampler_apply(self.chain, ctypes.byref(full))
            tok = int(full.data[full.selected].id)
        lc.llama_sampler_accept(self.grammar, tok)
        lc.llama_sampler_accept(self.chain, tok)
        return tok
