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
# The instruction first: "What is two plus two?" alone is a whole request the arithmetic
# intent answers at once, which would end the utterance at its pause (docs/intents.md).
QUESTION = "Please answer with one short sentence: what is two plus two?"
TURN_WAIT_S = 120.0
PARTIAL_MARK = "…"
# A question whose spoken answer lasts seconds: long enough to talk over.
STORY = "Tell me a long story about a brave little dragon."
CUT_OFF = "(cut off)"
# Every text #talk-reply shows, in order.
WATCH_REPLY_JS = """
window.__replies = [];
const reply = document.getElementById("talk-reply");
new MutationObserver(() => window.__replies.push(reply.textContent))
  .observe(reply, { childList: true, characterData: true, subtree: true });
"""
# Every text #talk-transcript shows, in order.
WATCH_TRANSCRIPT_JS = """
window.__transcripts = [];
const box = document.getElementById("talk-transcript");
new MutationObserver(() => window.__transcripts.push(box.textContent))
  .observe(box, { childList: true, characterData: true, subtree: true });
"""

# The talk view's state changes in order: [attribute, value], to tell what happened after what.
WATCH_TALK_JS = """
window.__talkLog = [];
const view = document.getElementById("view-talk");
new MutationObserver((records) => { for (const r of records) {
  window.__talkLog.push([r.attributeName, view.getAttribute(r.attributeName)]); } })
  .observe(view, { attributes: true,
                   attributeFilter: ["data-barge-ins", "data-played-ms", "data-playing",
                                     "data-transcript"] });
"""


def _talk(driver) -> dict:
    return driver.execute_script("return {...document.getElementById('view-talk').dataset}")


def _fake_mic(wav) -> tuple[str, ...]:
    """Chromium's flags for a fake microphone playing ``wav`` (the one fake here)."""
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}%noloop",
            "--autoplay-policy=no-user-gesture-required")


def _say(driver, seconds: float) -> None:
    """Hold the talk button until the page has sent ``seconds`` more of the fake mic."""
    sent = int(_talk(driver).get("sentMs", 0))
    ActionChains(driver).click_and_hold(driver.find_element(By.ID, "ptt")).perform()
    wait(driver, lambda dr: int(_talk(dr).get("sentMs", 0)) - sent >= seconds * 1000,
         "the page never sent the whole question", timeout=seconds + 20)


async def test_push_to_talk_yields_a_transcript_and_a_spoken_reply(
        ui_daemon, browser, models_dir, tmp_path) -> None:
    wav = tmp_path / "question.wav"
    seconds = spoken_wav(wav, QUESTION)
    d = await ui_daemon(node={"models_dir": str(models_dir)},
                             llm=llm_section(models_dir, max_tokens=32),
                             voice={"enabled": True, "language": "en",
                                    "partial_transcripts": True})
    driver = browser(*_fake_mic(wav))
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

    # Barge-in: while a long reply plays, the user holds the button and speaks again. The
    # node hears it and stops the reply (audio_stop, barge_in); the page stops playing and
    # shows the reply as cut off, and the new question gets its own turn.
    story = tmp_path / "story.wav"
    story_s = spoken_wav(story, STORY)
    other = browser(*_fake_mic(story))
    open_ui(other, d.url, "talk")
    other.execute_script(WATCH_REPLY_JS + WATCH_TRANSCRIPT_JS + WATCH_TALK_JS)
    _say(other, story_s)
    ActionChains(other).release(other.find_element(By.ID, "ptt")).perform()
    wait(other, lambda dr: int(_talk(dr).get("playedMs", 0)) > 0,
         "the long reply never started playing", timeout=TURN_WAIT_S)
    _say(other, story_s)
    wait(other, lambda dr: _talk(dr).get("bargeIns") == "1",
         "speaking over the reply did not stop it", timeout=TURN_WAIT_S)
    cut = wait(other, lambda dr: [r for r in dr.execute_script("return window.__replies")
                                 if r.endswith(CUT_OFF)], "the reply was never shown cut off")
    assert cut[0].removesuffix(CUT_OFF).strip(), f"no reply text before the cut: {cut}"
    # Stopped at the barge-in, and nothing of the old reply played after it: audio may come
    # next only once the new question has its transcript (its own reply may be playing by
    # now, since the utterance can end at its pause while the button is still held).
    log = other.execute_script("return window.__talkLog")
    at = log.index(["data-barge-ins", "1"])
    assert ["data-playing", "0"] in log[:at] and log[at - 1] == ["data-playing", "0"], log
    after = log[at + 1:]
    new_turn = next((i for i, (name, _) in enumerate(after) if name == "data-transcript"),
                    len(after))
    assert not [e for e in after[:new_turn] if e[0] == "data-played-ms"], \
        f"reply audio played after the barge-in: {log}"
    ActionChains(other).release(other.find_element(By.ID, "ptt")).perform()
    finals = wait(other, lambda dr: len(f := [t for t in dr.execute_script(
        "return window.__transcripts") if not t.endswith(PARTIAL_MARK)]) == 2 and f,
        "the question spoken over the reply was never transcribed", timeout=TURN_WAIT_S)
    assert "dragon" in finals[1].lower(), finals
    assert console_errors(other) == []
