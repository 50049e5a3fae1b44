"""Refresh docs/screenshots/*.png: each view of the web UI, from real daemons in a real Chromium.

Run from the repository root with the dev venv: ``.venv/bin/python scripts/screenshots.py``
(``--models DIR`` points at the default models; chat and talk need them).
Starts two daemons on loopback (the second one is the first one's static peer),
fills the world model, asks one chat question, then shoots each view.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.security.keys import create_key_file  # noqa: E402
from tests.browser.conftest import CHROMEDRIVER, CHROMIUM, CHROMIUM_FLAGS  # noqa: E402
from tests.browser.page import LLM_FILE, spoken_wav  # noqa: E402
from tests.support.daemon import DaemonProcess, free_port, minimal_config  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
DEFAULT_MODELS = Path("/var/cache/hybrid-agent-test/models")
WINDOW = (900, 1000)
PHONE = (390, 760)
WAIT_S = 240.0
CHAT_QUESTION = "What is 12 times 7?"
EXPERT = "maths"
SPOKEN_QUESTION = "What is two plus two?"
WORLD = {"kitchen.light": {"on": True, "level": 70}, "hall.temperature": 21.5,
         "front.door": "locked"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, default=DEFAULT_MODELS, help="default models dir")
    ap.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    args = ap.parse_args()
    return asyncio.run(_run(args.models, args.out))


async def _run(models: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ha-shots-"))
    daemons: list[DaemonProcess] = []
    driver = None
    try:
        key_file = tmp / "cluster.key"
        create_key_file(key_file)
        sec = {"cluster_key_file": str(key_file)}
        peer = await _daemon(tmp / "peer", daemons, node={"name": "core-1", "tier": "core"},
                             security=sec, world={"mode": "local", "serve": True})
        main_d = await _daemon(
            tmp / "main", daemons, security=sec,
            node={"name": "kitchen", "tier": "mid", "models_dir": str(models)},
            world={"mode": "local"}, voice={"enabled": True, "language": "en"},
            llm={"mode": "local", "model": str(models / LLM_FILE), "threads": 2,
                 "context": 2048, "slots": 2, "max_tokens": 64},
            agent={"experts": {EXPERT: {"system_prompt": "You do arithmetic with the calculator.",
                                        "tools": ["calculator"], "tool_choice": "required"}}},
            discovery={"enabled": False, "static_peers": [peer.url], "probe_interval_s": 0.5})
        async with aiohttp.ClientSession() as s:
            for key, value in WORLD.items():
                async with s.put(f"{main_d.url}/api/world/{key}", json=value) as r:
                    r.raise_for_status()
        wav = tmp / "question.wav"
        seconds = spoken_wav(wav, SPOKEN_QUESTION)
        driver = _browser(tmp / "chromium", wav)
        try:
            _shoot_all(driver, main_d.url, out, seconds)
        except Exception:
            print(driver.find_element(By.TAG_NAME, "main").text[:2000], file=sys.stderr)
            print(main_d.log()[-3000:], file=sys.stderr)
            raise
    finally:
        if driver is not None:
            driver.quit()
        for d in daemons:
            await d.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    for png in sorted(out.glob("*.png")):
        print(f"{png.relative_to(ROOT)}: {png.stat().st_size // 1024} KiB")
    return 0


async def _daemon(tmp: Path, started: list[DaemonProcess], **sections: Any) -> DaemonProcess:
    tmp.mkdir(parents=True)
    d = DaemonProcess(tmp, minimal_config(tmp / "state", free_port(), **sections))
    started.append(d)
    await d.start()
    return d


def _browser(profile: Path, wav: Path) -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    # The fake capture device plays the WAV as the microphone (there is no sound card).
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-prefers-reduced-motion",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={wav}%noloop",
                 "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(flag)
    return webdriver.Chrome(options=opts, service=Service(str(CHROMEDRIVER)))


def _shoot_all(driver: webdriver.Chrome, url: str, out: Path, seconds: float) -> None:
    wait = WebDriverWait(driver, WAIT_S, poll_frequency=0.2)
    driver.get(url + "/#chat")
    wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "true")
    if driver.find_element(By.ID, "chat-send").is_enabled():
        Select(driver.find_element(By.ID, "chat-agent")).select_by_value(EXPERT)
        box = driver.find_element(By.ID, "chat-input")
        box.send_keys(CHAT_QUESTION)
        driver.find_element(By.ID, "chat-send").click()
        wait.until(lambda d: d.find_elements(
            By.CSS_SELECTOR, "#chat-log li[data-final], #chat-log li[data-error]"))
        print("chat:", driver.find_element(By.ID, "chat-log").text.replace("\n", " | "))
    driver.save_screenshot(str(out / "chat.png"))
    for view in ("talk", "cluster", "world"):
        driver.find_element(By.ID, f"tab-{view}").click()
        if view == "talk":
            _talk_once(driver, wait, seconds)
        if view == "cluster":
            wait.until(lambda d: d.execute_script(
                "const r = document.querySelector('#peers tbody tr td:nth-of-type(5)');"
                "return r && r.textContent === 'yes'"))
        if view == "world":
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#world tbody tr"))
                       >= len(WORLD))
        driver.save_screenshot(str(out / f"{view}.png"))
    # The same page on a phone-sized screen.
    driver.set_window_size(*PHONE)
    driver.find_element(By.ID, "tab-talk").click()
    driver.save_screenshot(str(out / "phone-talk.png"))



def _talk_once(driver: webdriver.Chrome, wait: WebDriverWait, seconds: float) -> None:
    button = driver.find_element(By.ID, "ptt")
    if not button.is_enabled():
        return
    ActionChains(driver).click_and_hold(button).perform()
    wait.until(lambda d: int(d.execute_script(
        "return document.getElementById('view-talk').dataset.sentMs || 0")) >= seconds * 1000)
    ActionChains(driver).release(button).perform()
    wait.until(lambda d: d.execute_script(
        "const t = document.getElementById('view-talk').dataset; return t.turns || t.error"))
    # The reply is still playing; blur the button so the shot shows the idle page.
    driver.execute_script("document.activeElement.blur()")


if __name__ == "__main__":
    sys.exit(main())
