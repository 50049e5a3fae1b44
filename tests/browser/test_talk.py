"""Push-to-talk in the browser: Chromium's fake microphone plays an espeak-ng WAV.

The fake capture device is the one fake here (there is no sound card); the
page, the AudioWorklet, the WebSocket, VAD, Whisper, the agent on SmolLM2 and
piper are all real.
"""

from __future__ import annotations

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.page import console_errors, llm_section, open_ui, spoken_wav, wait

pytestmark = [pytest.mark.browser, pytest.mark.model]
# Long enough (about 3 s of speech) for a partial transcript while the user still talks.
QUESTION = "What is two plus two? Please answer with one short sentence."
TURN_WAIT_S = 120.0
PARTIAL_MARK = "…"
# Every text #talk-transcript shows, in order.
WATCH_TRANSCRIPT_JS = """
window.__transcripts = [];
const box = document.getElementById("talk-transcript");
new MutationObserver(() => window.__transcripts.push(box.textContent))
  .observe(box, { childList: true, characterData: true, subtree: true });
"""


def _talk(driver) -> dict:
    return driver.execute_script("return {...document.getElementById('view-talk').dataset}")


async def test_push_to_talk_yields_a_transcript_and_a_spoken_reply(
        ui_daemon, browser, models_dir, tmp_path) -> None:
    wav = tmp_path / "question.wav"
    seconds = spoken_wav(wav, QUESTION)
    d = await ui_daemon(node={"models_dir": str(models_dir)},
                             llm=llm_section(models_dir, max_tokens=32),
                             voice={"enabled": True, "language": "en",
                                    "partial_transcripts": True})
    driver = browser("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                     f"--use-file-for-fake-audio-capture={wav}%noloop",
                     "--autoplay-policy=no-user-gesture-required")
    open_ui(driver, d.url, "talk")
    button = driver.find_element(By.ID, "ptt")
    assert button.is_enabled(), "push-to-talk is disabled on localhost"
    driver.execute_script(WATCH_TRANSCRIPT_JS)

    ActionChains(driver).click_and_hold(button).perform()
    wait(driver, lambda dr: button.get_attribute("aria-pressed") == "true", "button not pressed")
    # Hold until the page has sent the whole question (the fake mic runs in real time).
    wait(driver, lambda dr: int(_talk(dr).get("sentMs", 0)) >= seconds * 1000,
         "the page never sent the whole question", timeout=seconds + 20)
    assert _talk(driver)["mic"] == "open"
    ActionChains(driver).release(button).perform()
    # The microphone is open only while the button is held.
    wait(driver, lambda dr: _talk(dr).get("mic") == "closed", "the mic stayed open")

    talk = wait(driver, lambda dr: (t := _talk(dr)) and (t.get("turns") or t.get("error")) and t,
                "the spoken turn never finished", timeout=TURN_WAIT_S)
    assert not talk.get("error"), (talk, driver.find_element(By.ID, "talk-status").text)
    transcript = talk.get("transcript", "").lower()
    assert "plus" in transcript and ("two" in transcript or "2" in transcript), transcript
    assert driver.find_element(By.ID, "talk-transcript").text.lower() == transcript
    # The live transcript: the utterance so far was shown (marked "…") before the final one.
    shown = driver.execute_script("return window.__transcripts")
    final_at = shown.index(talk["transcript"])
    partials = [t for t in shown[:final_at] if t.endswith(PARTIAL_MARK) and len(t) > 1]
    assert partials, f"no partial transcript before the final one: {shown}"
    assert driver.find_element(By.ID, "talk-reply").text.strip() not in ("", "—")
    assert int(talk.get("playedMs", 0)) > 200, f"no reply audio was played: {talk}"

    # A second turn from the keyboard: Tab from the tab list to the button, hold Space.
    sent = int(talk["sentMs"])
    driver.find_element(By.ID, "tab-talk").send_keys(Keys.TAB)
    assert driver.switch_to.active_element.get_attribute("id") == "ptt", "Tab skips the button"
    ActionChains(driver).key_down(Keys.SPACE).perform()
    wait(driver, lambda dr: _talk(dr).get("mic") == "open", "Space did not open the mic")
    wait(driver, lambda dr: int(_talk(dr)["sentMs"]) - sent >= seconds * 1000,
         "the page never sent the second question", timeout=seconds + 20)
    ActionChains(driver).key_up(Keys.SPACE).perform()
    talk = wait(driver, lambda dr: (t := _talk(dr)) and t.get("turns") == "2" and t,
                "the second spoken turn never finished", timeout=TURN_WAIT_S)
    assert "plus" in talk["transcript"].lower(), talk
    assert talk["mic"] == "closed"
    assert console_errors(driver) == []
