"""The layer split: planned from shares, read back from llama.cpp's own log lines."""

from __future__ import annotations

import pytest

from appliance.llm.rpc.placement import LoadLog, plan, ranges

# The lines llama.cpp 0.3.36's loader prints (src/llama-model.cpp, llama-kv-cache.cpp,
# llama-context.cpp), with their padding.
LOG = """\
load_tensors: layer   0 assigned to device CPU, is_swa = 0
load_tensors: layer   1 assigned to device CPU, is_swa = 0
load_tensors: layer   2 assigned to device RPC0, is_swa = 0
load_tensors: layer   3 assigned to device RPC0, is_swa = 0
load_tensors: layer   4 assigned to device RPC1, is_swa = 0
tensor token_embd.weight (28 MiB q8_0) buffer type overridden to CPU
tensor output_norm.weight (0 MiB f32) buffer type overridden to CPU
load_tensors:   CPU_Mapped model buffer size =    70.12 MiB
load_tensors: RPC0[127.0.0.1:4001] model buffer size =    20.50 MiB
load_tensors: RPC0[127.0.0.1:4002] model buffer size =    10.25 MiB
llama_kv_cache:        CPU KV buffer size =     8.00 MiB
llama_kv_cache: RPC0[127.0.0.1:4001] KV buffer size =     8.00 MiB
llama_context:        CPU compute buffer size =    66.51 MiB
"""


def test_the_split_follows_the_shares_and_llama_cpp_counts_the_output_layer_too():
    # Of 30 layers, the workers' share; llama.cpp's n_gpu_layers counts the output layer.
    assert plan(30, [1.0, 1.0]).gpu_layers == 15 + 1
    assert plan(30, [3.0, 1.0]).gpu_layers == 8 + 1  # round(7.5) is 8
    assert plan(30, [0.0, 1.0]).gpu_layers == 30 + 1  # every layer on the worker
    assert plan(30, [1.0, 0.0]).gpu_layers == 0  # nothing off this box
    p = plan(30, [2.0, 1.0, 1.0])
    assert p.gpu_layers == 16 and p.tensor_split == (1.0, 1.0)


@pytest.mark.parametrize("shares", [[1.0], [1.0, -1.0], [0.0, 0.0]])
def test_shares_that_make_no_split_are_refused(shares):
    with pytest.raises(ValueError):
        plan(30, shares)


def test_ranges_are_written_compactly():
    assert ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert ranges([]) == ""
    assert ranges([3]) == "3"


def test_the_log_says_where_each_layer_and_buffer_went():
    log = LoadLog()
    for piece in (LOG[:50], LOG[50:333], LOG[333:]):  # the callback gets arbitrary pieces
        log.feed(piece)
    places = log.report(n_layer=4, devices={"RPC0": "worker-a", "RPC1": "worker-b"},
                        endpoints={"127.0.0.1:4001": "worker-a", "127.0.0.1:4002": "worker-b"})
    by = {p["where"]: p for p in places}
    assert by["local"]["layers"] == "0-1" and by["local"]["count"] == 2
    assert by["local"]["model_mib"] == 70.12 and by["local"]["kv_mib"] == 8.0
    assert by["local"]["compute_mib"] == 66.51
    assert by["worker-a"]["layers"] == "2-3" and by["worker-a"]["model_mib"] == 20.5
    assert by["worker-a"]["kv_mib"] == 8.0 and not by["worker-a"]["output"]
    # Layer 4 of a 4-layer model is the output layer: llama.cpp assigns it to RPC1, but its
    # weights were kept on this box, so it runs here.
    assert by["worker-b"]["layers"] == "" and by["worker-b"]["output"] is False
    assert by["local"]["output"] is True
    assert by["worker-b"]["model_mib"] == 10.25


def test_without_the_override_the_output_layer_is_where_llama_cpp_put_it():
    log = LoadLog()
    log.feed("load_tensors: layer   0 assigned to device CPU, is_swa = 0\n"
             "load_tensors: layer   1 assigned to device RPC0, is_swa = 0\n")
    by = {p["where"]: p for p in log.report(1, {"RPC0": "w"}, {"127.0.0.1:1": "w"})}
    assert by["w"]["output"] is True and by["local"]["output"] is False
