"""The cluster view: this node and the peers discovery found, updated live."""

from __future__ import annotations

import re
from typing import Any

import pytest

from appliance.security.keys import create_key_file
from tests.browser.page import console_errors, llm_section, open_ui, wait

pytestmark = [pytest.mark.browser, pytest.mark.model]
# Columns of #peers: Name, Tier, Roles, Models, Trusted, Healthy, RTT, Load.
TIER, ROLES, MODELS, TRUSTED, HEALTHY, RTT, LOAD = range(1, 8)
DURATION_PART = re.compile(r"(\d+)([dhms])")
SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _peer_row(driver, name: str) -> list[str] | None:
    return driver.execute_script(
        "const r = document.querySelector(`#peers tr[data-peer='${arguments[0]}']`);"
        "return r ? [...r.children].map(c => c.textContent) : null", name)


def _facts(driver) -> dict[str, str]:
    """#node-info as {term: description}."""
    return driver.execute_script("""
        const out = {};
        for (const dt of document.querySelectorAll('#node-info dt'))
          out[dt.textContent] = dt.nextElementSibling.textContent;
        return out;""")


def _seconds(shown: str) -> int:
    """The page's uptime ("1m 5s", "2h 3m") back in whole seconds."""
    parts = DURATION_PART.findall(shown)
    assert parts, f"not a duration: {shown!r}"
    return sum(int(n) * SECONDS[unit] for n, unit in parts)


def _models(status: dict[str, Any]) -> list[str]:
    """The models /api/status names: each component's ``model`` and ``models``."""
    found: list[str] = []
    for c in status["components"].values():
        if c.get("model"):
            found.append(str(c["model"]))
        found.extend(str(m) for m in c.get("models") or [])
    return found


async def test_cluster_view_shows_this_node_every_peer_and_follows_changes_live(
        ui_daemon, browser, tmp_path, models_dir) -> None:
    key_file = tmp_path / "cluster.key"
    create_key_file(key_file)
    core = await ui_daemon(node={"name": "core-1", "tier": "core"},
                           security={"cluster_key_file": str(key_file)})
    edge = await ui_daemon(
        node={"name": "edge-1", "models_dir": str(models_dir)},
        world={"mode": "local", "serve": True},
        llm=llm_section(models_dir, serve=True), security={"cluster_key_file": str(key_file)},
        discovery={"enabled": False, "static_peers": [core.node_url],
                   "probe_interval_s": 0.5})
    driver = browser()
    open_ui(driver, edge.url, "cluster")
    wait(driver, lambda dr: _facts(dr).get("Name") == "edge-1", "this node never shown")

    # This node: the facts match what /api/status says.
    _, before = await edge.get_json("/api/status")
    facts = _facts(driver)
    assert facts["Tier"] == before["tier"] == "edge"
    assert before["roles"] and facts["Roles"] == ", ".join(before["roles"]), (facts, before)
    models = _models(before)
    assert models and facts["Models"] == ", ".join(models), (facts, models)
    assert re.fullmatch(r"\d+ request\(s\) in flight", facts["Load"]), facts
    # The page polls: wait for a poll later than `before`, then it cannot exceed `after`.
    up = wait(driver, lambda dr: (s := _seconds(_facts(dr)["Uptime"])) >= int(before["uptime_s"])
              and s, "the uptime never advanced")
    _, after = await edge.get_json("/api/status")
    assert up <= after["uptime_s"], (up, after["uptime_s"])
    wait(driver, lambda dr: _facts(dr)["Load"] == f"{after['inflight']} request(s) in flight",
         f"the load never matched /api/status ({after['inflight']} in flight)")

    # The peer: the trusted core, with its round-trip time and load.
    row = wait(driver, lambda dr: (r := _peer_row(dr, "core-1")) and r[TRUSTED] == "yes"
               and r[HEALTHY] == "yes" and r, "the core never showed up as a trusted healthy peer")
    assert row[TIER] == "core"
    assert re.fullmatch(r"\d+\.\d ms", row[RTT]), f"no round-trip time shown: {row}"
    _, listed = await edge.get_json("/api/peers")
    peer = next(p for p in listed["peers"] if p["name"] == "core-1")
    assert float(row[LOAD]) == peer["load"], (row, peer)
    assert row[ROLES] == ", ".join(peer.get("roles") or []), (row, peer)
    assert driver.execute_script("return document.getElementById('peers-empty').hidden")
    link = driver.execute_script(
        "return document.querySelector(`#peers tr[data-peer='core-1'] a`).href")
    # Its page at its LAN address: HTTPS (where people sign in), as peers reach it.
    assert link == core.node_url + "/", "the peer's name does not link to its own page"
    # (An untrusted peer needs mDNS, since a static peer joins only once it proves the
    # key: test_lan_page.py shows one.)

    # Live, without a reload: the page notices the killed core.
    driver.execute_script("window.__sameDocument = true")
    await core.stop(9)
    wait(driver, lambda dr: (r := _peer_row(dr, "core-1")) and r[HEALTHY] == "no",
         "the view never showed the killed core as unhealthy")
    assert driver.execute_script("return window.__sameDocument === true"), "the page reloaded"
    assert console_errors(driver) == []
