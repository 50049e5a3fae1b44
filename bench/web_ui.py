"""Web UI timings in a real Chromium: page ready, chat first token, push-to-talk to first audio.

Run: ``.venv/bin/python bench/web_ui.py [--models DIR] [--turns N]``; prints JSON.
One mid-tier daemon on loopback with the default models; Chromium's fake
microphone plays an espeak-ng question (there is no sound card). Times come
from the page's own ``performance.mark``s, so they are what a user waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from scripts.screenshots import (  # noqa: E402
    DEFAULT_MODELS,
    SPOKEN_QUESTION,
    _browser,
    _daemon,
)
from tests.browser.page import LLM_FILE, spoken_wav  # noqa: E402

WAIT_S = 60.0
CHAT_QUESTION = "Say hello to the kitchen."
MEASURE = """
const m = n => {
  const e = performance.getEntriesByName(n);
  return e.length ? e[e.length - 1].startTime : null;
};
return {ready: m('ui-ready'), send: m('chat-send'), first: m('chat-first-token'),
        final: m('chat-final'), release: m('talk-release'), transcript: m('talk-transcript'),
        audio: m('talk-first-audio')};
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    ap.add_argument("--turns", type=int, default=3, help="chat and spoken turns each")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(_run(args.models, args.turns)), indent=2))
    return 0


async def _run(models: Path, turns: int) -> dict[str, Any]:
    import shutil

    tmp = Path(tempfile.mkdtemp(prefix="ha-bench-ui-"))
    daemons: list[Any] = []
    driver = None
    try:
        d = await _daemon(tmp / "d", daemons, node={"name": "bench", "tier": "mid",
                                                     "models_dir": str(models)},
                          world={"mode": "local"}, voice={"enabled": True, "language": "en"},
                          llm={"mode": "local", "model": str(models / LLM_FILE), "threads": 2,
                               "context": 2048, "slots": 2, "max_tokens": 48})
        wav = tmp / "q.wav"
        seconds = spoken_wav(wav, SPOKEN_QUESTION)
        driver = _browser(tmp / "chromium", wav)
        return _measure(driver, d.url, turns, seconds)
    finally:
        if driver is not None:
            driver.quit()
        for dp in daemons:
            await dp.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _measure(driver: Any, url: str, turns: int, seconds: float) -> dict[str, Any]:
    wait = WebDriverWait(driver, WAIT_S, poll_frequency=0.05)
    ready, first, final, to_text, to_audio = [], [], [], [], []
    speech_to_audio: list[float] = []
    for turn in range(turns):
        # A new document each time (the query differs), so the marks start afresh.
        driver.get(f"{url}/?chat={turn}#chat")
        wait.until(lambda dr: dr.execute_script("return document.body.dataset.ready"))
        ready.append(driver.execute_script(MEASURE)["ready"])
        driver.find_element(By.ID, "chat-input").send_keys(CHAT_QUESTION + "\n")
        wait.until(lambda dr: dr.find_elements(By.CSS_SELECTOR, "#chat-log li[data-final]"))
        m = driver.execute_script(MEASURE)
        first.append(m["first"] - m["send"])
        final.append(m["final"] - m["send"])
        driver.execute_script("sessionStorage.clear()")
    for turn in range(turns):
        # A fresh page per turn: the fake microphone plays its file from the start.
        driver.get(f"{url}/?talk={turn}#talk")
        wait.until(lambda dr: dr.execute_script("return document.body.dataset.ready"))
        button = driver.find_element(By.ID, "ptt")
        ActionChains(driver).click_and_hold(button).perform()
        try:
            wait.until(lambda dr: int(dr.execute_script(
                "return document.getElementById('view-talk').dataset.sentMs || 0"))
                >= seconds * 1000)
        except Exception:
            print(turn, driver.execute_script(
                "return [{...document.getElementById('view-talk').dataset},"
                " document.getElementById('talk-status').textContent]"), file=sys.stderr)
            raise
        ActionChains(driver).release(button).perform()
        wait.until(lambda dr: dr.execute_script(
            "return document.getElementById('view-talk').dataset.turns"))
        m = driver.execute_script(MEASURE)
        if m["audio"] is None or m["transcript"] is None:
            raise RuntimeError(f"spoken turn {turn} had no transcript or audio: {m}")
        # The server usually ends the utterance on trailing silence before the release.
        to_text.append(m["transcript"] - m["release"])
        to_audio.append(m["audio"] - m["release"])
        speech_to_audio.append(1000 * float(driver.execute_script(
            "return document.getElementById('view-talk').dataset.firstAudioS")))
    return {"page_ready_ms": _stats(ready), "chat_first_token_ms": _stats(first),
            "chat_final_ms": _stats(final), "talk_release_to_transcript_ms": _stats(to_text),
            "talk_release_to_first_audio_ms": _stats(to_audio),
            "talk_end_of_speech_to_first_audio_ms": _stats(speech_to_audio), "turns": turns}


def _stats(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "max": round(max(values), 1)}


if __name__ == "__main__":
    sys.exit(main())
