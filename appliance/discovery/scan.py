"""One-shot LAN scan for `hybrid-agent discover`: browse, resolve, challenge, tabulate."""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any

from zeroconf.asyncio import AsyncZeroconf

from appliance.config import Config
from appliance.discovery import interfaces
from appliance.discovery.advertise import ip_version
from appliance.discovery.browse import scan
from appliance.discovery.registry import peer_url
from appliance.net.challenge import challenge_peer
from appliance.net.http1 import Pool
from appliance.security import keys
from appliance.security.errors import SecurityError
from appliance.security.nodetls import REVOCATIONS_FILE, NodeTLS

CHALLENGE_TIMEOUT_S = 1.0
NODE_ID = re.compile(r"[0-9a-f]{32}")


async def discover(cfg: Config, duration_s: float) -> list[dict[str, Any]]:
    """Every node heard within ``duration_s``, with ``trusted`` when this box's key is readable."""
    addrs = interfaces.nic_addresses(cfg.discovery.interfaces, cfg.discovery.ip_version)
    if not addrs:
        raise RuntimeError("no network interface to browse on "
                           f"(discovery.interfaces: {cfg.discovery.interfaces or 'real NICs'})")
    azc = AsyncZeroconf(interfaces=interfaces.zeroconf_interfaces(addrs),
                        ip_version=ip_version(cfg.discovery.ip_version))
    try:
        found = await scan(azc, duration_s)
    finally:
        await azc.async_close()
    try:
        key: bytes | None = keys.read_key(cfg.security.cluster_key_file)
    except SecurityError:
        key = None
    rows = [{"name": a.instance, "id": a.txt.id, "tier": a.txt.tier,
             "url": peer_url(list(a.addresses), a.port), "addresses": list(a.addresses),
             "roles": list(a.txt.roles), "models": list(a.txt.models), "version": a.txt.version,
             "load": a.txt.load, "kf": a.txt.kf, "trusted": None} for a in found]
    if key is not None:
        with tempfile.TemporaryDirectory(prefix="hybrid-agent-discover-") as tmp:
            # This command is not the node: it proves itself with a throwaway certificate.
            tls = NodeTLS.ephemeral(Path(tmp), key, cfg.node.state_path / "tls" / REVOCATIONS_FILE)
            pool = Pool(node_tls=lambda: tls)
            try:
                await asyncio.gather(*(_check(pool, row, key) for row in rows))
            finally:
                await pool.close()
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Human output of :func:`discover`."""
    if not rows:
        return "no hybrid-agent nodes found"
    lines = [f"{'NAME':<20} {'TIER':<5} {'URL':<28} {'TRUST':<9} {'LOAD':>5}  ROLES / MODELS"]
    for r in rows:
        trust = {True: "trusted", False: "UNTRUSTED", None: "no key"}[r["trusted"]]
        what = ",".join(r["roles"]) or "-"
        if r["models"]:
            what += " / " + ",".join(r["models"])
        lines.append(f"{r['name'][:20]:<20} {r['tier'][:5]:<5} {str(r['url'])[:28]:<28} "
                     f"{trust:<9} {r['load']:>5.2f}  {what}")
    return "\n".join(lines)


async def _check(pool: Pool, row: dict[str, Any], key: bytes) -> None:
    if not row["url"]:
        row["trusted"] = False
        return
    expected = row["id"] if NODE_ID.fullmatch(row["id"]) else None
    try:
        answer = await challenge_peer(pool, row["url"], key, CHALLENGE_TIMEOUT_S, expected)
    except SecurityError:
        row["trusted"] = False
        return
    row["trusted"] = answer["id"] == row["id"]
