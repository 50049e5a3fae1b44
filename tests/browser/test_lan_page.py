"""The page opened from another address on a namespace LAN, as a laptop in the house would.

Two daemons sit in their own network namespaces on a bridge (tests/lan/netlab.py);
Chromium runs in the root namespace and browses to the edge's LAN address, so
every request the page makes comes from a non-loopback address.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.security.keys import create_key_file
from tests.browser.page import console_errors, open_ui, sign_in, text, wait
from tests.lan.netlab import MEMBER_IFACE, Lan

pytestmark = [pytest.mark.browser, pytest.mark.lan]
# mDNS announcement, then the challenge that decides trust.
DISCOVERY_WAIT_S = 45.0


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Namespaces e (the edge whose page is opened) and s (a stranger), with multicast."""
    net = Lan.create(["e", "s"])
    yield net
    net.destroy()


def _peer_row(driver, name: str) -> list[str] | None:
    return driver.execute_script(
        "const r = document.querySelector(`#peers tr[data-peer='${arguments[0]}']`);"
        "return r ? [...r.children].map(c => c.textContent) : null", name)


async def test_from_another_address_the_page_signs_in_then_lists_strangers(
        lan, ui_daemon, browser, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.key", tmp_path / "theirs.key"
    create_key_file(ours)
    create_key_file(theirs)

    def on_lan(member: str, name: str, key: Path, **sections: dict) -> dict:
        return {"netns": lan.ns(member), "node": {"name": name}, "http": {"host": "0.0.0.0"},
                "security": {"cluster_key_file": str(key)},
                "discovery": {"enabled": True, "interfaces": [MEMBER_IFACE]}, **sections}

    edge = await ui_daemon(**on_lan("e", "edge-e", ours, world={"mode": "local"}))
    # A node of another household on the same LAN: it announces itself but has another key.
    await ui_daemon(**on_lan("s", "stranger-s", theirs))
    url = f"https://{lan.addr('e')}:{edge.port}"
    pairing = json.loads(lan.run("e", sys.executable, "-m", "appliance.cli", "devices", "add",
                                 "laptop", "--json", "--config", str(edge.config_path)).stdout)

    driver = browser(f"--ignore-certificate-errors-spki-list={pairing['spki']}")
    # Plain http from the LAN goes to https (the same page).
    driver.get(f"http://{lan.addr('e')}:{edge.port}/")
    wait(driver, lambda d: d.current_url.startswith(url), "plain http was not sent to https")
    open_ui(driver, url, "world")
    # Not signed in: only the sign-in form; the world's data is not even asked for.
    assert driver.find_element("id", "signin-form").is_displayed()
    assert not driver.find_element("id", "main").is_displayed()
    sign_in(driver, pairing["code"])
    # Signed in, the world model is the device's to edit, as on the box itself.
    driver.find_element("id", "tab-world").click()
    assert driver.find_element("id", "world-save").is_enabled()
    wait(driver, lambda d: text(d, "#world-live") == "connected", "the world feed never connected")

    # The cluster view lists the stranger, untrusted (its certificate is not ours).
    driver.find_element("id", "tab-cluster").click()
    # Columns: Name, Tier, Roles, Models, Trusted, Healthy, RTT, Load.
    row = wait(driver, lambda dr: (r := _peer_row(dr, "stranger-s")) and r[4] == "no" and r,
               "the node with another cluster key never showed up as untrusted",
               timeout=DISCOVERY_WAIT_S)
    assert row[5] == "no", f"an untrusted peer shown healthy: {row}"
    assert driver.find_element("id", "signed-in").is_displayed()
    errors = [e["message"] for e in console_errors(driver)]
    assert all("/api/ui" in m and "401" in m for m in errors), errors
