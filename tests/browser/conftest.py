"""A real Chromium (Debian's chromium + chromedriver) driven by Selenium."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Keep Chromium quiet and self-contained: no network beyond the page under test.
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1000,900",
)
PAGE_LOAD_TIMEOUT_S = 30


@pytest.fixture
async def ui_daemon(daemon_factory: Callable[..., Any]) -> AsyncIterator[Callable[..., Any]]:
    """``daemon_factory`` for the browser tests (kept as one place to tune their daemons)."""
    yield daemon_factory


@pytest.fixture
def browser() -> Iterator[Callable[..., webdriver.Chrome]]:
    """``browser(*extra_flags)`` starts a fresh headless Chromium; all are quit at teardown."""
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not exe.exists():
            pytest.fail(f"{exe} is missing: apt-get install chromium chromium-driver")
    started: list[tuple[webdriver.Chrome, str]] = []

    def make(*extra: str) -> webdriver.Chrome:
        profile = tempfile.mkdtemp(prefix="ha-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            driver = webdriver.Chrome(options=opts, service=Service(str(CHROMEDRIVER)))
        except Exception:
            shutil.rmtree(profile, ignore_errors=True)
            raise
        driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT_S)
        started.append((driver, profile))
        return driver

    yield make
    for driver, profile in started:
        try:
            driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)
