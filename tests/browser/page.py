"""Helpers shared by the browser tests: open the UI, wait for it, read its console."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path
from typing import Any

from selenium.common.exceptions import WebDriverException
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


def sign_in(driver: WebDriver, code: str) -> None:
    """Enter a pairing code in the page's sign-in form; wait until the page reloaded signed in."""
    field = driver.find_element("id", "signin-code")
    field.clear()
    field.send_keys(code)
    driver.find_element("id", "signin-send").click()

    def signed_in(d: WebDriver) -> bool:
        try:  # the page reloads meanwhile: a look at the old one may fail
            return bool(d.execute_script(
                "return document.body.dataset.ready === 'true' && !document.body.dataset.signin"
                " && !document.getElementById('main').hidden"))
        except WebDriverException:
            return False

    wait(driver, signed_in, "signing in did not open the page")


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


# WCAG 2.x contrast of every visible text run against the first opaque background behind
# it (semi-transparent layers on the way are blended in). Disabled controls are exempt,
# as WCAG exempts them; so is text hidden for screen readers only (1 px, clipped).
CONTRAST_JS = """
const rgba = (c) => {
  const m = c.match(/rgba?\\(([^)]*)\\)/);
  if (!m) return null;
  const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, under) => {
  const a = top[3];
  return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat(1);
};
const lum = (c) => {
  const [r, g, b] = c.slice(0, 3).map(v => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const background = (el) => {
  const layers = [];
  for (let n = el; n; n = n.parentElement) {
    const bg = rgba(getComputedStyle(n).backgroundColor);
    if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
  }
  let base = [255, 255, 255, 1];
  if (layers.length && layers[layers.length - 1][3] >= 1) base = layers.pop();
  for (const l of layers.reverse()) base = over(l, base);
  return base;
};
const found = [];
for (const el of document.body.querySelectorAll("*")) {
  const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join("").trim();
  if (!own || el.closest(":disabled, option, script, style")) continue;
  if (!el.checkVisibility({ visibilityProperty: true, opacityProperty: true })) continue;
  const box = el.getBoundingClientRect();
  if (box.width <= 1 || box.height <= 1 || box.right <= 0 || box.bottom <= 0) continue;
  const st = getComputedStyle(el);
  const bg = background(el);
  const fg = over(rgba(st.color), bg);
  const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const size = parseFloat(st.fontSize), bold = Number(st.fontWeight) >= 700;
  const need = size >= 24 || (size >= 18.66 && bold) ? 3 : 4.5;
  const shown = "rgb(" + bg.slice(0, 3).map(Math.round).join(",") + ")";
  found.push({ text: own.slice(0, 40), id: el.id, tag: el.tagName,
               ratio: Math.round(ratio * 100) / 100, need, fg: st.color, bg: shown });
}
return found;
"""


def text_contrast(driver: WebDriver) -> list[dict[str, Any]]:
    """Every visible text run on the page with its WCAG contrast ``ratio`` and the ``need``."""
    return list(driver.execute_script(CONTRAST_JS))
