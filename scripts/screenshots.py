"""`make screenshots`: the demo dashboard in headless Chromium, light and dark, French and English,
desktop and phone, written to screenshots/ (linked from the README).

Starts its own demo (simulators + gunicorn) on a free port; Debian's Chromium is driven by
Playwright (never `playwright install`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = [
    # name, language, theme, width, height
    ("dashboard-en-light", "en", "light", 1440, 1000),
    ("dashboard-en-dark", "en", "dark", 1440, 1000),
    ("dashboard-fr-light", "fr", "light", 1440, 1000),
    ("dashboard-fr-dark", "fr", "dark", 1440, 1000),
    ("phone-fr-light", "fr", "light", 390, 844),
    ("phone-en-dark", "en", "dark", 390, 844),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_demo(port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DEMO_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "demo"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit("the demo did not start")


def _settle(page: Page) -> None:
    """Wait until every card has left its skeleton."""
    page.wait_for_function(
        "() => document.querySelectorAll('.widget-content.is-loading').length === 0", timeout=20000
    )
    page.wait_for_timeout(600)  # the fade-in


def main() -> int:
    OUT.mkdir(exist_ok=True)
    port = _free_port()
    demo = _start_demo(port)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for name, language, theme, width, height in SHOTS:
                context = browser.new_context(
                    viewport={"width": width, "height": height},
                    device_scale_factor=1 if width > 800 else 2,
                    locale=language,
                    color_scheme=theme,  # the system preference; no cookie: the default path
                )
                page = context.new_page()
                page.goto(base + "/")
                _settle(page)
                path = OUT / f"{name}.png"
                page.screenshot(path=str(path), full_page=True)
                print(path.relative_to(ROOT))
                context.close()
            # The loading skeleton, caught before the first answer.
            context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en")
            page = context.new_page()
            # Cancel every widget request: the cards keep their skeletons.
            page.add_init_script("document.addEventListener('htmx:beforeRequest', e => e.preventDefault())")
            page.goto(base + "/")
            page.wait_for_timeout(400)
            page.screenshot(path=str(OUT / "skeleton-en-light.png"))
            print("screenshots/skeleton-en-light.png")
            context.close()
            browser.close()
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
