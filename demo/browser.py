"""Debian's Chromium driven by Playwright: for the end-to-end tests, screenshots and audits.

Playwright's own browser download is never used (`playwright install` is not run): the browser
is the `chromium` Debian package, installed by scripts/install-test-deps.sh.
"""

from __future__ import annotations

import os

from playwright.sync_api import Browser, Playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def launch_chromium(playwright: Playwright) -> Browser:
    """A headless Chromium from /usr/bin (or $CHROMIUM)."""
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"{CHROMIUM} is missing: run `make test-deps` (apt chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
