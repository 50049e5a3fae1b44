"""Hands-free in the browser: the Talk view's switch streams the fake microphone continuously
and the node answers only what follows its wake word.

Chromium's fake capture device plays a WAV (the one fake here: no sound card); the
page, the AudioWorklet, the WebSocket, the wake word engine and its model, VAD,
Whisper, the agent on SmolLM2 and piper are all real.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from selenium.webdriver.common.by import By

from appliance.voice.audio import read_wav, resample, to_int16
from appliance.voice.tts import Synthesizer
from tests.browser.page import console_errors, llm_section, open_ui, spoken_wav, wait
from tests.browser.test_talk import TURN_WAIT_S, _fake_mic, _talk

pytestmark = [pytest.mark.browser, pytest.mark.model]
RATE = 48000


def _script(path: Path, models_dir: Path) -> float:
    """A WAV: a question without the wake word (ignored), then piper saying the wake word and
    the question (answered); seconds."""
    unwoken = path.with_name("unwoken.wav")
    spoken_wav(unwoken, "What is the capital of France?")
    tts = Synthesizer(models_dir / "piper" / "en_US-joe-medium.onnx")
    woken = tts.synthesize_all("Okay Nabu, what is two plus two?").astype(np.float32) / 32768
    gap = np.zeros(RATE, np.float32)
    audio = np.concatenate([gap, read_wav(unwoken.read_bytes()).samples, gap,
                            resample(woken, tts.sample_rate, RATE), gap, gap])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(to_int16(audio).tobytes())
    return len(audio) / RATE


async def test_the_hands_free_switch_answers_only_after_the_wake_word(
        ui_daemon, browser, models_dir, tmp_path) -> None:
    wav = tmp_path / "room.wav"
    seconds = _script(wav, models_dir)
    d = await ui_daemon(node={"models_dir": str(models_dir)},
                        llm=llm_section(models_dir, max_tokens=32),
                        voice={"enabled": True, "language": "en"})
    driver = browser(*_fake_mic(wav))
    open_ui(driver, d.url, "talk")
    switch = driver.find_element(By.ID, "hands-free")
    assert switch.is_enabled() and not switch.is_selected()
    switch.click()
    wait(driver, lambda dr: _talk(dr).get("mic") == "open", "the switch did not open the mic")
    wait(driver, lambda dr: "Okay Nabu" in dr.find_element(By.ID, "talk-status").text,
         "the page never said which wake word to say")
    assert not driver.find_element(By.ID, "ptt").is_enabled()  # one way of talking at a time
    talk = wait(driver, lambda dr: (t := _talk(dr)) and (t.get("turns") or t.get("error")) and t,
                "the hands-free turn never finished", timeout=seconds + TURN_WAIT_S)
    assert not talk.get("error"), (talk, driver.find_element(By.ID, "talk-status").text)
    assert talk["wakes"] == "1" and talk["handsFree"] == "on", talk
    # The question before the wake word was not heard; the one after it was answered.
    transcript = talk["transcript"].lower()
    assert "plus" in transcript and "france" not in transcript, transcript
    assert "nabu" not in transcript, transcript
    assert driver.find_element(By.ID, "talk-reply").text.strip() not in ("", "—")
    wait(driver, lambda dr: int(_talk(dr).get("playedMs", 0)) > 200, "no reply audio played")
    switch.click()
    wait(driver, lambda dr: _talk(dr).get("mic") == "closed", "the switch did not close the mic")
    assert _talk(driver)["handsFree"] == "off" and driver.find_element(By.ID, "ptt").is_enabled()
    assert int(_talk(driver).get("sentMs", 0)) > 3000  # it streamed without a button held
    assert console_errors(driver) == []
