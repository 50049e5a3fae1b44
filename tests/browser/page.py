"""Helpers shared by the browser tests: open the UI, wait for it, read its console."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path
from typing import Any

from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 20.0
LLM_FILE = "llm/SmolLM2-135M-Instruct.Q4_1.gguf"


def llm_section(models_dir: Path, **overrides: Any) -> dict[str, Any]:
    """The daemon's llm section: the real SmolLM2 in-process, sized for a 2-core box."""
    return {"mode": "local", "model": str(models_dir / LLM_FILE), "threads": 2,
            "context": 2048, "slots": 2, "queue": 4, **overrides}


def open_ui(driver: WebDriver, url: str, view: str = "chat") -> None:
    """Load the page at ``url`` on ``view`` and wait until its script finished starting."""
    driver.get(f"{url}/#{view}")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == "true",
         "the page never finished starting")


def wait(driver: WebDriver, cond: Any, message: str, timeout: float = WAIT_S) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(cond, message)


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    """Browser console entries at SEVERE level (errors, failed loads, exceptions)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def text(driver: WebDriver, css: str) -> str:
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : ''", css))


SPEECH_TOOL_TIMEOUT_S = 60


def spoken_wav(path: Path, text: str) -> float:
    """``text`` spoken by espeak-ng into ``path`` (what the fake microphone plays); seconds."""
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True,
                   timeout=SPEECH_TOOL_TIMEOUT_S)
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(path),
                    "pad", "0.3", "0.7"], check=True, timeout=SPEECH_TOOL_TIMEOUT_S)
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()
