"""A phone in the house, as Chromium on another address of a namespace LAN: it trusts the box by
the fingerprint `hybrid-agent devices add` printed, signs in with the code, chats, and talks
with push-to-talk (Chromium's fake microphone playing espeak-ng speech, the one fake here)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.browser.page import (
    console_errors,
    llm_section,
    open_ui,
    sign_in,
    spoken_wav,
    wait,
)
from tests.lan.netlab import MEMBER_IFACE, Lan

pytestmark = [pytest.mark.browser, pytest.mark.lan, pytest.mark.model]
QUESTION = "What is two plus two?"
TURN_WAIT_S = 120.0


@pytest.fixture
def lan() -> Iterator[Lan]:
    """One box (e) on a LAN; the browser is on the test process's own address of it."""
    net = Lan.create(["e"])
    yield net
    net.destroy()


def _talk(driver) -> dict:
    return driver.execute_script("return {...document.getElementById('view-talk').dataset}")


async def test_a_paired_browser_on_the_lan_chats_and_talks(
        lan, ui_daemon, browser, models_dir, tmp_path: Path) -> None:
    box = await ui_daemon(netns=lan.ns("e"), node={"name": "kitchen",
                                                   "models_dir": str(models_dir)},
                          http={"host": "0.0.0.0"},
                          discovery={"enabled": False, "interfaces": [MEMBER_IFACE]},
                          llm=llm_section(models_dir, max_tokens=24),
                          voice={"enabled": True, "language": "en"})
    url = f"https://{lan.addr('e')}:{box.port}"
    # On the box: `sudo hybrid-agent devices add NAME` shows the code and the fingerprint.
    out = lan.run("e", sys.executable, "-m", "appliance.cli", "devices", "add", "phone",
                  "--json", "--config", str(box.config_path)).stdout
    pairing = json.loads(out)
    wav = tmp_path / "question.wav"
    seconds = spoken_wav(wav, QUESTION)
    driver = browser(f"--ignore-certificate-errors-spki-list={pairing['spki']}",
                     "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={wav}%noloop",
                     "--autoplay-policy=no-user-gesture-required")
    open_ui(driver, url, "chat")
    # Not signed in yet: the page asks for the code and shows nothing else.
    assert driver.execute_script("return document.body.dataset.signin") == "true"
    assert driver.find_element(By.ID, "signin-form").is_displayed()
    assert not driver.find_element(By.ID, "main").is_displayed()
    driver.find_element(By.ID, "signin-code").send_keys("WRONG-CODE")
    driver.find_element(By.ID, "signin-send").click()
    wait(driver, lambda d: "wrong" in d.find_element(By.ID, "signin-error").text,
         "a wrong code was not refused in words")
    sign_in(driver, pairing["code"])
    assert driver.execute_script("return window.isSecureContext") is True
    # Until then the console shows only the two refusals the page handled: 401, wrong code.
    before = [e["message"] for e in console_errors(driver)]
    assert len(before) == 2 and "/api/ui" in before[0] and "401" in before[0], before
    assert "/api/signin" in before[1] and "403" in before[1], before
    # The cookie is not for scripts.
    assert "ha_device" not in driver.execute_script("return document.cookie")

    # Chat with the box's agent.
    driver.find_element(By.ID, "chat-input").send_keys("Say hello in three words.")
    driver.find_element(By.ID, "chat-send").click()
    answer = wait(driver, lambda d: d.execute_script(
        "const li = [...document.querySelectorAll('#chat-log li.assistant')].pop();"
        "return li && li.dataset.final === 'true' ? li.querySelector('.answer').textContent"
        " : null"), "no chat answer", timeout=TURN_WAIT_S)
    assert answer.strip()

    # Push-to-talk: the page is a secure context, so the microphone opens.
    open_ui(driver, url, "talk")
    button = driver.find_element(By.ID, "ptt")
    assert button.is_enabled(), "push-to-talk is disabled on the paired HTTPS page"
    ActionChains(driver).click_and_hold(button).perform()
    wait(driver, lambda d: int(_talk(d).get("sentMs", 0)) >= seconds * 1000,
         "the page never sent the whole question", timeout=seconds + 20)
    ActionChains(driver).release(button).perform()
    talk = wait(driver, lambda d: (t := _talk(d)) and (t.get("turns") or t.get("error")) and t,
                "the spoken turn never finished", timeout=TURN_WAIT_S)
    assert not talk.get("error"), talk
    transcript = talk.get("transcript", "").lower()
    assert "plus" in transcript and ("two" in transcript or "2" in transcript), (transcript,
                                                                                 talk)
    assert console_errors(driver) == []
