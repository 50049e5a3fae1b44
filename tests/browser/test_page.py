"""The page itself: served from the package, loads cleanly, shows this node live."""

from __future__ import annotations

import aiohttp
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.page import console_errors, open_ui, text, wait


async def test_page_loads_without_console_errors(daemon_factory, browser) -> None:
    d = await daemon_factory(node={"name": "ui-node"})
    driver = browser()
    for view in ("chat", "talk", "cluster", "world"):
        open_ui(driver, d.url, view)
        panel = driver.find_element(By.ID, f"view-{view}")
        assert panel.is_displayed(), f"the {view} view is not shown at #{view}"
        wait(driver, lambda dr: "ui-node" in text(dr, "#node-badge"), "badge never named the node")
    errors = console_errors(driver)
    assert errors == [], f"console errors: {errors}"


async def test_static_files_are_served_from_the_package_with_a_strict_policy(daemon_factory):
    d = await daemon_factory()
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
        async with s.get(d.url + "/static/../ui.py") as r:
            assert r.status in (403, 404)
        async with s.get(d.url + "/static/nope.js") as r:
            assert r.status == 404


async def test_cluster_view_shows_this_node_live(daemon_factory, browser) -> None:
    d = await daemon_factory(node={"name": "cluster-self"})
    driver = browser()
    open_ui(driver, d.url, "cluster")
    wait(driver, lambda dr: "cluster-self" in text(dr, "#node-info"), "node facts never shown")
    info = text(driver, "#node-info")
    assert "edge" in info
    first = text(driver, "#cluster-updated")
    wait(driver, lambda dr: text(dr, "#node-info") != info or text(dr, "#cluster-updated") != first,
         "the cluster view never refreshed")


async def test_tabs_work_from_the_keyboard(daemon_factory, browser) -> None:
    d = await daemon_factory()
    driver = browser()
    open_ui(driver, d.url, "chat")
    tab = driver.find_element(By.ID, "tab-chat")
    tab.send_keys(Keys.ARROW_RIGHT)
    wait(driver, lambda dr: dr.find_element(By.ID, "view-talk").is_displayed(),
         "ArrowRight did not open the next view")
    assert driver.switch_to.active_element.get_attribute("id") == "tab-talk"
    driver.switch_to.active_element.send_keys(Keys.END)
    wait(driver, lambda dr: dr.find_element(By.ID, "view-world").is_displayed(),
         "End did not open the last view")
    assert not driver.find_element(By.ID, "view-chat").is_displayed()


async def test_every_control_is_labelled_and_a_phone_needs_no_sideways_scrolling(
        daemon_factory, browser) -> None:
    d = await daemon_factory(world={"mode": "local"})
    driver = browser()
    driver.set_window_size(390, 844)
    open_ui(driver, d.url, "chat")
    unlabelled = driver.execute_script("""
        return [...document.querySelectorAll('input, select, textarea, button')]
          .filter(c => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
                       && !c.textContent.trim())
          .map(c => c.outerHTML.slice(0, 80));""")
    assert unlabelled == []
    for view in ("chat", "talk", "cluster", "world"):
        driver.find_element(By.ID, f"tab-{view}").click()
        wide = driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        assert wide[1] < 500, f"not a phone-sized window: {wide}"
        assert wide[0] <= wide[1], f"the {view} view is {wide[0]}px wide on a {wide[1]}px phone"
