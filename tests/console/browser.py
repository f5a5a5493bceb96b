"""Headless Chromium for the console's browser tests (Debian's `chromium` + `chromium-driver`, via selenium).

Nothing is downloaded: the browser and the driver are the system's, Selenium Manager is told to stay
offline. Console messages are collected through `goog:loggingPrefs`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MISSING_REASON = (
    "headless Chromium is not installed here (needs /usr/bin/chromium and /usr/bin/chromedriver: "
    "apt-get install -y chromium chromium-driver)"
)
DESKTOP = (1280, 900)
PHONE = (390, 844)


def browser_available() -> bool:
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file()


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium session with a fresh profile, closed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")
    profile = tempfile.mkdtemp(prefix="calora-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_errors(driver: Any) -> list[str]:
    """Console messages at error level since the last call (the log is drained by reading it)."""
    return [
        f"{entry.get('source', '')}: {entry['message']}"
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE"
    ]


def set_viewport(driver: Any, width: int, height: int, mobile: bool) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            "mobile": mobile,
        },
    )


def screenshot(driver: Any, path: Path, width: int, mobile: bool, max_height: int = 3200) -> Path:
    """A full-page PNG at `width` CSS pixels (cut at `max_height`)."""
    height = int(
        driver.execute_script(
            "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)"
        )
    )
    set_viewport(driver, width, min(max(height, 400), max_height), mobile)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
