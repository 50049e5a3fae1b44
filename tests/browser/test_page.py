"""The page itself: served from the package, loads cleanly, keyboard and phone friendly."""

from __future__ import annotations

import aiohttp
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from appliance.web.ui import STATIC_DIR
from tests.browser.page import console_errors, open_ui, text, text_contrast, wait

pytestmark = pytest.mark.browser

VIEWS = ("chat", "talk", "cluster", "world")
LAN_NAME = "kitchen.test"
PHONE_WIDTH = 375
# Everything the page downloads (no build step, no CDN): kept small for a slow Wi-Fi.
STATIC_BUDGET_BYTES = 100 * 1024


async def test_page_loads_cleanly_works_by_keyboard_and_fits_a_phone(ui_daemon, browser) -> None:
    # http.names: the name people use for the box (any other Host is refused, see below).
    d = await ui_daemon(node={"name": "ui-node"}, world={"mode": "local"},
                        http={"names": [LAN_NAME]})
    driver = browser()
    for view in VIEWS:
        open_ui(driver, d.url, view)
        assert driver.find_element(By.ID, f"view-{view}").is_displayed(), f"#{view} not shown"
        wait(driver, lambda dr: "ui-node" in text(dr, "#node-badge"), "badge never named the node")

    # The cluster view shows this node and refreshes by itself.
    wait(driver, lambda dr: "ui-node" in text(dr, "#node-info"), "node facts never shown")
    assert "edge" in text(driver, "#node-info")
    first = text(driver, "#cluster-updated")
    wait(driver, lambda dr: text(dr, "#cluster-updated") != first, "cluster view never refreshed")

    # Tabs follow the WAI-ARIA pattern: arrows and Home/End move between them.
    driver.find_element(By.ID, "tab-world").click()
    driver.find_element(By.ID, "tab-world").send_keys(Keys.HOME)
    wait(driver, lambda dr: dr.find_element(By.ID, "view-chat").is_displayed(), "Home failed")
    driver.switch_to.active_element.send_keys(Keys.ARROW_RIGHT)
    wait(driver, lambda dr: dr.find_element(By.ID, "view-talk").is_displayed(), "ArrowRight failed")
    assert driver.switch_to.active_element.get_attribute("id") == "tab-talk"
    assert not driver.find_element(By.ID, "view-chat").is_displayed()

    # Every control has an accessible name: a field by its <label> (or aria-label), a
    # button by its text (or aria-label). The talk button works on localhost.
    unlabelled = driver.execute_script("""
        const named = (c) => (c.labels && [...c.labels].some(l => l.textContent.trim()))
          || (c.getAttribute('aria-label') || '').trim()
          || (c.getAttribute('aria-labelledby') || '').split(' ').some(
               id => id && document.getElementById(id)?.textContent.trim())
          || (c.tagName === 'BUTTON' && c.textContent.trim());
        return [...document.querySelectorAll('input, select, textarea, button')]
          .filter(c => !named(c)).map(c => c.outerHTML.slice(0, 80));""")
    assert unlabelled == []
    fields = driver.execute_script(
        "return document.querySelectorAll('input, select, textarea, button').length")
    assert fields >= 10, f"only {fields} controls found: the check looked at nothing"
    assert driver.execute_script("return window.isSecureContext")
    assert not driver.find_element(By.ID, "talk-insecure").is_displayed()

    # Text contrast meets WCAG AA (4.5:1, 3:1 for large text) in every view, light and dark.
    for scheme in ("light", "dark"):
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]})
        assert driver.execute_script(
            f"return matchMedia('(prefers-color-scheme: {scheme})').matches")
        for view in VIEWS:
            driver.find_element(By.ID, f"tab-{view}").click()
            runs = text_contrast(driver)
            assert len(runs) >= 3, f"{scheme} {view}: no text measured: {runs}"
            low = [r for r in runs if r["ratio"] < r["need"]]
            assert low == [], f"{scheme} {view}: text below WCAG AA contrast: {low}"
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    # On a phone (375 CSS px, an iPhone SE/mini) no view needs sideways scrolling.
    driver.set_window_size(PHONE_WIDTH, 812)
    for view in VIEWS:
        driver.find_element(By.ID, f"tab-{view}").click()
        wide = driver.execute_script(
            "return [document.scrollingElement.scrollWidth, window.innerWidth]")
        assert wide[1] == PHONE_WIDTH, f"not a phone-sized window: {wide}"
        assert wide[0] <= wide[1], f"the {view} view is {wide[0]}px wide on a {wide[1]}px phone"

    errors = console_errors(driver)
    assert errors == [], f"console errors: {errors}"

    # Under a LAN name over plain http the page is not a secure context: it says so and
    # disables the microphone. (The name resolves to loopback inside Chromium only.)
    lan = browser(f"--host-resolver-rules=MAP {LAN_NAME} 127.0.0.1")
    open_ui(lan, d.url.replace("127.0.0.1", LAN_NAME), "talk")
    assert lan.execute_script("return window.isSecureContext") is False
    notice = lan.find_element(By.ID, "talk-insecure")
    assert notice.is_displayed() and "https" in notice.text and "localhost" in notice.text
    assert not lan.find_element(By.ID, "ptt").is_enabled()
    assert console_errors(lan) == []
    # A name the box does not answer to (a rebinding attacker's) gets nothing, not even
    # the page's API: 421.
    other = browser("--host-resolver-rules=MAP evil.test 127.0.0.1")
    other.get(d.url.replace("127.0.0.1", "evil.test") + "/api/ui")
    assert "does not answer to the name" in other.page_source


async def test_static_files_are_served_from_the_package_with_a_strict_policy(ui_daemon):
    d = await ui_daemon()
    async with aiohttp.ClientSession() as s:
        async with s.get(d.url + "/") as r:
            assert r.status == 200
            assert "text/html" in r.headers["Content-Type"]
            assert "script-src 'self'" in r.headers["Content-Security-Policy"]
            assert '<script type="module" src="/static/app.js">' in await r.text()
        for name, ctype in (("app.js", "javascript"), ("style.css", "text/css"),
                            ("pcm-worklet.js", "javascript"), ("icon.svg", "image/svg+xml")):
            async with s.get(f"{d.url}/static/{name}") as r:
                assert r.status == 200, name
                assert ctype in r.headers["Content-Type"], (name, r.headers["Content-Type"])
        # The whole page, every file under /static/, fits the size budget.
        total = 0
        for path in sorted(STATIC_DIR.iterdir()):
            async with s.get(f"{d.url}/static/{path.name}") as r:
                assert r.status == 200, path.name
                total += len(await r.read())
        async with s.get(d.url + "/") as r:
            total += len(await r.read())
        assert 0 < total <= STATIC_BUDGET_BYTES, f"the page is {total} bytes"
        async with s.get(d.url + "/static/../ui.py") as r:
            assert r.status in (403, 404)
        async with s.get(d.url + "/static/nope.js") as r:
            assert r.status == 404
        async with s.get(d.url + "/api/ui") as r:
            body = await r.json()
            # This daemon has no world, voice or LLM: the page must not call their APIs.
            assert body["features"]["world"] is False and body["features"]["voice"] is False
            assert body["features"]["peers"] is True
