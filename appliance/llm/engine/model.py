"""The loaded model: llama.cpp's model and context, its vocabulary and chat template.

Everything here blocks (loading, tokenizing, the warm-up decode): callers run it
in a worker thread, never on the event loop.
"""

from __future__ import annotations

import ctypes
import logging
import os
from typing import Any

from appliance.llm.chat import LLMError, PromptTooLong
from appliance.llm.engine.settings import EngineSettings

log = logging.getLogger(__name__)

# Tokens decoded per llama_decode call at most (prompt chunks share it with generation).
BATCH_TOKENS = 512
PIECE_BUF = 256
# The warm-up prompt: a short chat turn, so the decode takes the multi-token path a real
# prompt takes (llama.cpp's AMX repacking survives one token and crashes on two).
WARMUP_MESSAGES = [{"role": "user", "content": "Hello! What can you do?"}]
# OMP_WAIT_POLICY per llm.wait_policy; "adaptive" leaves libgomp's own default (spin for
# about 300k iterations, then sleep; fewer when there are more threads than CPUs).
WAIT_POLICIES = {"active": "ACTIVE", "passive": "PASSIVE"}


def set_wait_policy(policy: str) -> str:
    """Set OpenMP's wait policy before libgomp loads (the first llama_cpp import).

    An OMP_WAIT_POLICY already in the environment (/etc/default/hybrid-agent) wins.
    Returns the policy in effect, in words.
    """
    if "OMP_WAIT_POLICY" in os.environ:
        return os.environ["OMP_WAIT_POLICY"].lower() + " (from the environment)"
    value = WAIT_POLICIES.get(policy)
    if value is not None:
        os.environ["OMP_WAIT_POLICY"] = value
    return policy


class Model:
    """One GGUF loaded for generation (and, optionally, a second context for embeddings)."""

    def __init__(self, settings: EngineSettings, repack: bool) -> None:
        import llama_cpp as lc
        from llama_cpp import _logger
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        _logger.set_verbose(False)  # llama.cpp prints every tensor otherwise
        s = settings
        lc.llama_backend_init()
        mparams = lc.llama_model_default_params()
        mparams.use_extra_bufts = repack
        offload = None
        if s.rpc_endpoints:  # a model split over other boxes (appliance.llm.rpc)
            from appliance.llm.rpc.placement import Offload

            offload = Offload(s.model_path, s.rpc_endpoints, s.rpc_shares, s.rpc_workers)
            offload.apply(mparams)
        model = lc.llama_model_load_from_file(str(s.model_path).encode(), mparams)
        if not model:
            raise LLMError(f"llama.cpp cannot load {s.model_path} (not a GGUF model?)")
        self.model = model
        self.ctx: Any = None
        self.embed_ctx: Any = None
        self.placement: dict[str, Any] | None = None
        """Where the layers went, when split over other boxes."""
        try:
            self.ctx = _context(model, s, n_ctx=s.context, seqs=s.slots)
            self.vocab = lc.llama_model_get_vocab(model)
            self.n_ctx = int(lc.llama_n_ctx(self.ctx))
            self.n_vocab = int(lc.llama_vocab_n_tokens(self.vocab))
            self.add_bos = bool(lc.llama_vocab_get_add_bos(self.vocab))
            self.n_embd = int(lc.llama_model_n_embd(model))
            template = lc.llama_model_chat_template(model, None)
            if not template:
                raise LLMError(f"{s.model_path} has no tokenizer.chat_template")
            self.pieces: dict[int, bytes] = {}
            eos = self.piece(lc.llama_vocab_eos(self.vocab), special=True).decode(
                errors="replace")
            bos = self.piece(lc.llama_vocab_bos(self.vocab), special=True).decode(
                errors="replace")
            self.formatter: Any = Jinja2ChatFormatter(template.decode(), eos_token=eos,
                                                 bos_token=bos, add_generation_prompt=True)
            if s.embeddings:
                self.embed_ctx = _context(model, s, n_ctx=min(s.context, BATCH_TOKENS),
                                          seqs=1, embeddings=True)
            if offload is not None:
                self.placement = offload.report()
        except BaseException:
            self.free()
            raise

    def free(self) -> None:
        import llama_cpp as lc

        for attr in ("embed_ctx", "ctx"):
            ctx = getattr(self, attr)
            if ctx is not None:
                lc.llama_free(ctx)
                setattr(self, attr, None)
        if self.model is not None:
            lc.llama_model_free(self.model)
            self.model = None

    # ------------------------------------------------------------ text <-> tokens

    def tokenize(self, text: str, *, add_special: bool | None = None) -> list[int]:
        import llama_cpp as lc

        data = text.encode()
        n_max = len(data) + 8
        buf = (lc.llama_token * n_max)()
        bos = self.add_bos if add_special is None else add_special
        n = lc.llama_tokenize(self.vocab, data, len(data), buf, n_max, bos, True)
        if n < 0:
            raise PromptTooLong(f"the prompt needs {-n} tokens")
        return list(buf[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (cached for generated, non-special tokens)."""
        import llama_cpp as lc

        if not special:
            cached = self.pieces.get(token)
            if cached is not None:
                return cached
        buf = ctypes.create_string_buffer(PIECE_BUF)
        n = lc.llama_token_to_piece(self.vocab, token, buf, PIECE_BUF, 0, special)
        out = buf.raw[:max(n, 0)]
        if not special:
            self.pieces[token] = out
        return out

    def is_end(self, token: int) -> bool:
        import llama_cpp as lc

        return bool(lc.llama_vocab_is_eog(self.vocab, token))

    def logits(self, index: int) -> Any:
        """The logits row ``index`` of the last decode, as a numpy view (no copy)."""
        import llama_cpp as lc
        import numpy as np

        return np.ctypeslib.as_array(lc.llama_get_logits_ith(self.ctx, index),
                                     shape=(self.n_vocab,))

    # ------------------------------------------------------------ warm-up

    def warm_up(self) -> None:
        """Decode a short prompt and one generated token, then forget them.

        As llama-server does at start: a build or CPU that cannot run this model
        fails here, before the node says it is ready, not at a user's first question.
        """
        import llama_cpp as lc

        tokens = self.tokenize(self.formatter(messages=WARMUP_MESSAGES).prompt)
        tokens = (tokens * 2 if len(tokens) < 2 else tokens)[:BATCH_TOKENS - 1] or [0, 0]
        batch = lc.llama_batch_init(BATCH_TOKENS, 0, 1)
        mem = lc.llama_get_memory(self.ctx)
        try:
            for step, chunk in enumerate((tokens, [tokens[-1]])):
                start = 0 if step == 0 else len(tokens)
                for i, tok in enumerate(chunk):
                    put(batch, i, tok, start + i, 0, i == len(chunk) - 1)
                batch.n_tokens = len(chunk)
                rc = lc.llama_decode(self.ctx, batch)
                if rc != 0:
                    raise LLMError(f"the warm-up decode failed (llama_decode returned {rc})")
                row = self.logits(len(chunk) - 1)
                if not bool((row == row).all()):  # NaN logits: a broken build or CPU path
                    raise LLMError("the warm-up decode produced NaN logits")
            if self.embed_ctx is not None:
                self.embed([tokens])
        finally:
            lc.llama_memory_clear(mem, True)
            lc.llama_batch_free(batch)

    # ------------------------------------------------------------ embeddings

    def embed(self, inputs: list[list[int]]) -> list[list[float]]:
        """Mean-pooled, L2-normalised embeddings of each token list (one at a time)."""
        import llama_cpp as lc
        import numpy as np

        if self.embed_ctx is None:
            raise LLMError("embeddings are off on this node (llm.embeddings)")
        limit = int(lc.llama_n_ctx(self.embed_ctx))
        mem = lc.llama_get_memory(self.embed_ctx)
        batch = lc.llama_batch_init(limit, 0, 1)
        out = []
        try:
            for tokens in inputs:
                if len(tokens) > limit:
                    raise PromptTooLong(f"an input is {len(tokens)} tokens; embeddings take "
                                        f"at most {limit}")
                lc.llama_memory_clear(mem, True)
                for i, tok in enumerate(tokens):
                    put(batch, i, tok, i, 0, True)
                batch.n_tokens = len(tokens)
                rc = lc.llama_decode(self.embed_ctx, batch)
                if rc != 0:
                    raise LLMError(f"the embedding decode failed (llama_decode returned {rc})")
                ptr = lc.llama_get_embeddings_seq(self.embed_ctx, 0)
                vec = np.ctypeslib.as_array(ptr, shape=(self.n_embd,)).astype(np.float64)
                norm = float(np.linalg.norm(vec)) or 1.0
                out.append([float(x) for x in vec / norm])
        finally:
            lc.llama_memory_clear(mem, True)
            lc.llama_batch_free(batch)
        return out


def put(batch: Any, i: int, token: int, pos: int, seq_id: int, logits: bool) -> None:
    """Set entry ``i`` of a llama_batch: one token of one sequence."""
    batch.token[i] = token
    batch.pos[i] = pos
    batch.n_seq_id[i] = 1
    batch.seq_id[i][0] = seq_id
    batch.logits[i] = logits


def _context(model: Any, s: EngineSettings, *, n_ctx: int, seqs: int,
             embeddings: bool = False) -> Any:
    import llama_cpp as lc

    cparams = lc.llama_context_default_params()
    cparams.n_ctx = n_ctx
    cparams.n_batch = BATCH_TOKENS if not embeddings else n_ctx
    cparams.n_ubatch = BATCH_TOKENS if not embeddings else n_ctx
    cparams.n_seq_max = seqs
    cparams.n_threads = s.threads
    cparams.n_threads_batch = s.threads
    # One KV pool shared by all slots: a long conversation may use the whole context.
    cparams.kv_unified = True
    cparams.no_perf = True
    if embeddings:
        cparams.embeddings = True
        cparams.pooling_type = lc.LLAMA_POOLING_TYPE_MEAN
    ctx = lc.llama_init_from_model(model, cparams)
    if not ctx:
        raise LLMError(f"llama.cpp cannot create a context of {n_ctx} tokens")
    return ctx
