"""The cluster view: this node and the peers discovery found, updated live."""

from __future__ import annotations

import pytest

from appliance.security.keys import create_key_file
from tests.browser.page import console_errors, open_ui, text, wait

pytestmark = pytest.mark.browser


def _peer_row(driver, name: str) -> list[str] | None:
    return driver.execute_script(
        "const r = document.querySelector(`#peers tr[data-peer='${arguments[0]}']`);"
        "return r ? [...r.children].map(c => c.textContent) : null", name)


async def test_cluster_view_lists_a_second_daemon_and_sees_it_go_down(
        ui_daemon, browser, tmp_path) -> None:
    key_file = tmp_path / "cluster.key"
    create_key_file(key_file)
    sec = {"cluster_key_file": str(key_file)}
    core = await ui_daemon(node={"name": "core-1", "tier": "core"}, security=sec)
    edge = await ui_daemon(node={"name": "edge-1"}, security=sec,
                                discovery={"enabled": False, "static_peers": [core.url],
                                           "probe_interval_s": 0.5})
    driver = browser()
    open_ui(driver, edge.url, "cluster")
    wait(driver, lambda dr: "edge-1" in text(dr, "#node-info"), "this node never shown")
    # Name, Tier, Roles, Models, Trusted, Healthy, RTT, Load
    row = wait(driver, lambda dr: (r := _peer_row(dr, "core-1")) and r[4] == "yes"
               and r[5] == "yes" and r, "the core never showed up as a trusted healthy peer")
    assert row[1] == "core"
    assert row[6].endswith(" ms"), f"no round-trip time shown: {row}"
    assert driver.execute_script("return document.getElementById('peers-empty').hidden")
    link = driver.execute_script(
        "return document.querySelector(`#peers tr[data-peer='core-1'] a`).href")
    assert link == core.url + "/", "the peer's name does not link to its own page"

    await core.stop(9)
    wait(driver, lambda dr: (r := _peer_row(dr, "core-1")) and r[5] == "no",
         "the view never showed the killed core as unhealthy")
    assert console_errors(driver) == []
