"""The page opened from another address on a namespace LAN, as a phone in the house would.

Two daemons sit in their own network namespaces on a bridge (tests/lan/netlab.py);
Chromium runs in the root namespace and browses to the edge's LAN address, so
every request the page makes comes from a non-loopback address.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.security.keys import create_key_file
from tests.browser.page import console_errors, open_ui, text, wait
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


async def test_from_another_address_the_page_says_what_it_cannot_do_and_lists_strangers(
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
    url = f"http://{lan.addr('e')}:{edge.port}"

    driver = browser()
    open_ui(driver, url, "world")
    # The world API answers only on the box itself (or to signed peers): the page says so
    # instead of failing, and offers no form that could not work.
    notice = driver.find_element("id", "world-unavailable")
    assert notice.is_displayed(), "#world-unavailable hidden on a non-loopback page"
    assert "SSH tunnel" in notice.text and "localhost" in notice.text, notice.text
    assert not driver.find_element("id", "world-save").is_enabled()
    assert text(driver, "#world-live") == "not connected"

    # The cluster view lists the stranger, untrusted (the challenge failed).
    driver.find_element("id", "tab-cluster").click()
    # Columns: Name, Tier, Roles, Models, Trusted, Healthy, RTT, Load.
    row = wait(driver, lambda dr: (r := _peer_row(dr, "stranger-s")) and r[4] == "no" and r,
               "the node with another cluster key never showed up as untrusted",
               timeout=DISCOVERY_WAIT_S)
    assert row[5] == "no", f"an untrusted peer shown healthy: {row}"
    assert console_errors(driver) == []
