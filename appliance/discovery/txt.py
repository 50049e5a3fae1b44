"""The TXT record of a hybrid-agent service: this node's, and a peer's parsed defensively.

Keys: ``id`` (node id), ``tier``, ``roles`` and ``models`` (comma lists),
``v`` (version), ``load`` (``inflight/slots``), ``kf`` (cluster-key
fingerprint), ``boot`` (random per process start: a restarted node's record
differs from its cached one, so browsers see an update and re-probe at once),
on a node with the ``rpc`` role ``rpc`` (its RPC link's TLS port) and ``mem``
(the MiB of memory it can lend, rounded),
and, added by the advertiser, ``seq`` (a counter per record sent: a TXT never
repeats an earlier one, which browsers would ignore as already cached).
Everything read from a peer is hostile: decoded leniently, stripped of
non-printables and capped in length and count.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.net.text import clean
from appliance.node import Node

SERVICE_TYPE = "_hybrid-agent._tcp.local."
MAX_VALUE_CHARS = 128
MAX_LIST_ITEMS = 16
MAX_ITEM_CHARS = 64
MAX_MEM_MB = 1 << 30  # a petabyte: more is a lie
BOOT_ID = secrets.token_hex(4)


@dataclass(frozen=True)
class Txt:
    """A peer's self-description, cleaned."""

    id: str = ""
    tier: str = ""
    roles: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    version: str = ""
    load: float = 0.0
    kf: str = ""
    rpc_port: int = 0
    mem_mb: int = 0


def local_txt(node: Node, fingerprint: str, exclude: int = 0) -> dict[str, str]:
    """This node's TXT record (also the body of its challenge answer, which does not count
    itself in the load: ``exclude``)."""
    txt = {
        "id": node.node_id,
        "tier": node.tier,
        "roles": ",".join(node.roles),
        "models": ",".join(local_models(node)),
        "v": node.version,
        "load": f"{max(node.inflight - exclude, 0)}/{llm_slots(node)}",
        "kf": fingerprint,
        "boot": BOOT_ID,
    }
    worker = node.get("rpc_worker")
    if worker is not None and "rpc" in node.roles:
        txt.update(worker.txt())
    return txt


def local_models(node: Node) -> list[str]:
    """Model ids this node serves: the LLM component's ``model_ids`` or the GGUF file's stem."""
    if "llm" not in node.roles:
        return []
    llm = node.get("llm")
    ids = getattr(llm, "model_ids", None)
    if callable(ids):
        ids = ids()
    if isinstance(ids, list | tuple) and ids:
        return [str(i) for i in ids][:MAX_LIST_ITEMS]
    model = node.config.llm.model
    return [Path(model).stem] if model else ["default"]


def llm_slots(node: Node) -> int:
    """Parallel LLM slots; 1 for a node without an LLM (load is then in-flight requests)."""
    return node.config.llm.slots if "llm" in node.roles else 1


def parse_txt(props: dict[Any, Any]) -> Txt:
    """A peer's TXT properties (bytes or str keys and values) as a cleaned :class:`Txt`."""
    d: dict[str, str] = {}
    for k, v in list(props.items())[:64]:
        key = _text(k, 16)
        if key:
            d[key] = _text(v, MAX_VALUE_CHARS * 4)
    return Txt(
        id=clean(d.get("id", ""), MAX_VALUE_CHARS),
        tier=clean(d.get("tier", ""), 16),
        roles=split_list(d.get("roles", "")),
        models=split_list(d.get("models", "")),
        version=clean(d.get("v", ""), 32),
        load=parse_load(d.get("load", "")),
        kf=clean(d.get("kf", ""), 64),
        rpc_port=parse_int(d.get("rpc", ""), 65535),
        mem_mb=parse_int(d.get("mem", ""), MAX_MEM_MB),
    )


def parse_int(text: Any, limit: int) -> int:
    """A whole number in 0..limit; anything else means 0."""
    value = str(text).strip()
    if not value.isdigit() or len(value) > 12:
        return 0
    number = int(value)
    return number if number <= limit else 0


def parse_load(text: Any) -> float:
    """``inflight/slots`` -> a fraction >= 0; unparsable means 0."""
    try:
        a, _, b = str(text).partition("/")
        inflight, slots = int(a), int(b or "1")
    except ValueError:
        return 0.0
    if inflight < 0 or slots <= 0:
        return 0.0
    return min(inflight / slots, 1000.0)


def split_list(text: Any) -> tuple[str, ...]:
    """A comma list, each item cleaned, at most MAX_LIST_ITEMS."""
    items = (clean(x, MAX_ITEM_CHARS) for x in str(text).split(",")[:MAX_LIST_ITEMS])
    return tuple(x for x in items if x)


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value[:limit].decode("utf-8", errors="replace")
    return str(value)[:limit]
