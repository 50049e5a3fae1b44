"""The RPC keys of the config, the TXT record of a worker, and the memory it can lend."""

from __future__ import annotations

import pytest

from appliance import config, hardware
from appliance.config import ConfigError
from appliance.daemon import Daemon
from appliance.discovery.txt import parse_txt
from appliance.llm.rpc.roster import SplitConfigError, parse_workers
from tests.foundation.test_hardware import GIB, make_tree
from tests.support.daemon import minimal_config


def test_rpc_workers_takes_the_word_auto_or_a_list_of_names():
    assert config.build({"llm": {"rpc_workers": "auto"}}).llm.rpc_workers == ["auto"]
    cfg = config.build({"llm": {"rpc_workers": ["box-a", "box-b"], "tensor_split": [2, 1, 1]}})
    assert cfg.llm.rpc_workers == ["box-a", "box-b"] and cfg.llm.tensor_split == [2.0, 1.0, 1.0]
    assert config.build({}).llm.rpc_workers == []  # off unless asked for
    with pytest.raises(ConfigError, match=r"llm\.rpc_workers: expected a list"):
        config.build({"llm": {"rpc_workers": "box-a"}})


@pytest.mark.parametrize(("workers", "split", "message"), [
    (["auto", "box-a"], [], "either auto or a list"),
    (["auto"], [1, 1], "needs llm.rpc_workers to name"),
    (["box-a", "box-a"], [], "distinct"),
    (["box-a"], [1, 1, 1], "needs 2 shares"),
    (["box-a"], [1, -1], "shares are >= 0"),
    (["box-a"], [1, 0], "some worker's is > 0"),
])
def test_workers_and_shares_that_do_not_fit_together_are_refused(workers, split, message):
    with pytest.raises(SplitConfigError, match=message):
        parse_workers(workers, split)


def test_the_daemon_names_the_key_of_a_bad_split(tmp_path, models_dir):
    cfg = minimal_config(tmp_path / "state", 1, llm={
        "mode": "local", "model": str(models_dir / "llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
        "rpc_workers": ["box-a"], "tensor_split": [1.0]})
    with pytest.raises(ConfigError, match=r"llm.rpc_workers: llm.tensor_split needs 2 shares"):
        Daemon(config.build(cfg, source="test.yaml"))


def test_a_split_needs_a_model_of_its_own(tmp_path):
    cfg = minimal_config(tmp_path / "state", 1, llm={"mode": "remote", "rpc_workers": "auto"})
    with pytest.raises(ConfigError, match=r"llm\.rpc_workers: .* needs llm\.mode local or auto"):
        Daemon(config.build(cfg, source="test.yaml"))


def test_a_workers_txt_carries_its_link_port_and_free_memory_and_hostile_values_read_as_0():
    txt = parse_txt({b"id": b"w", b"roles": b"rpc", b"rpc": b"8702", b"mem": b"4096"})
    assert txt.rpc_port == 8702 and txt.mem_mb == 4096
    for bad in (b"99999", b"-1", b"8702x", b"9" * 40, b""):
        hostile = parse_txt({b"id": b"w", b"rpc": bad, b"mem": bad})
        assert hostile.rpc_port == 0
    assert parse_txt({b"mem": b"9" * 13}).mem_mb == 0  # more than a petabyte is a lie


def test_available_memory_is_memavailable_capped_by_what_the_cgroup_has_left(tmp_path):
    root = make_tree(tmp_path, cpus=4, mem_gib=16, cgroup_mem_max=str(4 * GIB))
    (root / "proc/meminfo").write_text("MemTotal: 16777216 kB\nMemAvailable: 8388608 kB\n")
    (root / "sys/fs/cgroup/machine.slice/box.scope/memory.current").write_text(f"{GIB}\n")
    assert hardware.available_memory(root) == 3 * GIB
    (root / "sys/fs/cgroup/machine.slice/box.scope/memory.max").write_text("max\n")
    assert hardware.available_memory(root) == 8 * GIB
