"""The world view: live through the SSE feed, editable with compare-and-set."""

from __future__ import annotations

import json

import aiohttp
import pytest
from selenium.webdriver.common.by import By

from tests.browser.page import console_errors, open_ui, text, wait

pytestmark = pytest.mark.browser


def _row_value(driver, key: str) -> str | None:
    return driver.execute_script(
        "const r = document.querySelector(`#world tr[data-key='${arguments[0]}'] code.value`);"
        "return r ? r.textContent : null", key)


async def test_world_edit_in_one_tab_appears_in_another(ui_daemon, browser) -> None:
    d = await ui_daemon(world={"mode": "local"})
    async with aiohttp.ClientSession() as s, s.put(d.url + "/api/world/kitchen.light",
                                                    json="off") as r:
        assert r.status == 200, await r.text()
    driver = browser()
    open_ui(driver, d.url, "world")
    first = driver.current_window_handle
    wait(driver, lambda dr: _row_value(dr, "kitchen.light") == '"off"', "initial value not listed")
    driver.switch_to.new_window("tab")
    open_ui(driver, d.url, "world")
    second = driver.current_window_handle
    wait(driver, lambda dr: text(dr, "#world-live") == "connected", "second tab's feed not live")
    driver.switch_to.window(first)
    wait(driver, lambda dr: text(dr, "#world-live") == "connected", "first tab's feed not live")

    # Edit through the form in the first tab: the Edit button fills the form.
    driver.find_element(By.CSS_SELECTOR, "#world tr[data-key='kitchen.light'] button").click()
    value = driver.find_element(By.ID, "world-value")
    value.clear()
    value.send_keys('{"on": true, "level": 70}')
    driver.find_element(By.ID, "world-save").click()
    wait(driver, lambda dr: _row_value(dr, "kitchen.light") == '{"on":true,"level":70}',
         "the edit did not show in the tab that made it")

    driver.switch_to.window(second)
    wait(driver, lambda dr: _row_value(dr, "kitchen.light") == '{"on":true,"level":70}',
         "the edit never reached the second tab through SSE")
    # A new key typed in the second tab reaches the first one too.
    driver.find_element(By.ID, "world-key").send_keys("hall.temp")
    driver.find_element(By.ID, "world-value").send_keys("21.5")
    driver.find_element(By.ID, "world-save").click()
    driver.switch_to.window(first)
    wait(driver, lambda dr: _row_value(dr, "hall.temp") == "21.5", "new key never reached tab one")
    # A delete in the first tab removes the row in the second one.
    row = "#world tr[data-key='hall.temp']"
    driver.find_element(By.CSS_SELECTOR, f"{row} button[aria-label^='Delete']").click()
    driver.switch_to.window(second)
    wait(driver, lambda dr: _row_value(dr, "hall.temp") is None, "the delete never reached tab two")

    # Bad JSON is refused on the page, naming the problem; nothing is written.
    driver.find_element(By.ID, "world-key").send_keys("door")
    driver.find_element(By.ID, "world-value").send_keys("{not json")
    driver.find_element(By.ID, "world-save").click()
    wait(driver, lambda dr: "not valid JSON" in text(dr, "#world-error"), "bad JSON accepted")

    _, body = await d.get_json("/api/world")
    values = {e["key"]: e["value"] for e in body["entries"]}
    assert values == {"kitchen.light": {"on": True, "level": 70}}
    errors = console_errors(driver)
    assert errors == [], json.dumps(errors)



async def test_a_save_never_overwrites_a_change_made_while_the_form_was_open(
        ui_daemon, browser) -> None:
    d = await ui_daemon(world={"mode": "local"})
    url = d.url + "/api/world/kitchen.light"
    async with aiohttp.ClientSession() as s, s.put(url, json="off") as r:
        assert r.status == 200, await r.text()
    driver = browser()
    open_ui(driver, d.url, "world")
    wait(driver, lambda dr: text(dr, "#world-live") == "connected", "the feed never went live")
    wait(driver, lambda dr: _row_value(dr, "kitchen.light") == '"off"', "initial value not listed")
    driver.find_element(By.CSS_SELECTOR, "#world tr[data-key='kitchen.light'] button").click()
    value = driver.find_element(By.ID, "world-value")
    value.clear()
    value.send_keys('"on"')

    # Meanwhile someone else changes the key; the feed shows it in the table, but the
    # form still holds an edit of the old value.
    async with aiohttp.ClientSession() as s, s.put(url, json="dimmed") as r:
        assert r.status == 200, await r.text()
    wait(driver, lambda dr: _row_value(dr, "kitchen.light") == '"dimmed"',
         "the other change never reached the page")
    driver.find_element(By.ID, "world-save").click()
    wait(driver, lambda dr: "changed meanwhile" in text(dr, "#world-error"),
         "the page saved over a change it never showed in the form")
    _, stored = await d.get_json("/api/world/kitchen.light")
    assert stored["value"] == "dimmed", stored
    assert _row_value(driver, "kitchen.light") == '"dimmed"'

    # Saving again, now knowing the current version, works.
    driver.find_element(By.ID, "world-save").click()
    wait(driver, lambda dr: _row_value(dr, "kitchen.light") == '"on"', "the second save failed")
    _, stored = await d.get_json("/api/world/kitchen.light")
    assert stored["value"] == "on", stored
    # Chromium logs every 4xx response; the refused save is the only one expected.
    unexpected = [e for e in console_errors(driver)
                  if "412 (Precondition Failed)" not in e["message"]]
    assert unexpected == [], json.dumps(unexpected)
