"""6. First load in a real browser: Chromium, cold cache, the six cards, upstreams at 50-300 ms.

The dashboard stack (bench/dashboard.py) with every simulator (the Prometheus and Alertmanager
ones hold the data the example's gauges ask for) answering in 50-300 ms. Debian's Chromium,
driven by Playwright (demo/browser.py), logs a person in through the provider's form; the
browser's cache is then emptied (DevTools' `Network.clearBrowserCache`) and the dashboard opened
again, several times, each time as someone else (their own cards not yet in the portal's cache).

Measured in the page: the time from the navigation's start (`performance.now()` is counted from
it) until every card's body holds data (`.widget-content` in state ok, empty or stale); and the
bytes on the wire, from DevTools (`Network.loadingFinished`'s `encodedDataLength`: headers and
compressed bodies) of every response until then. The median of the loads is reported.
Goals: every card filled within 1.5 s; at most 150 kB.
"""

from __future__ import annotations

import statistics
from typing import Any

from playwright.sync_api import sync_playwright

from demo.browser import launch_chromium

from .context import Bench
from .dashboard import CARDS, dashboard
from .report import at_most

SECTION = "6 first load"
TIME_GOAL = 1.5
BYTES_GOAL = 150_000
# Set by an init script: the moment (ms from the navigation's start) every card held data.
WATCH = """
(() => {
  const cards = %s;
  const filled = () => cards.every((slug) => {
    const body = document.querySelector(`#widget-${slug}-body .widget-content`);
    return body && /\\bis-(ok|empty|stale)\\b/.test(body.className);
  });
  new MutationObserver((_, observer) => {
    if (window.__filled === undefined && filled()) {
      window.__filled = performance.now();
      observer.disconnect();
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
})();
"""


def measure(bench: Bench) -> None:
    loads = 2 if bench.quick else 5
    with dashboard(bench, loads + 1, real_monitoring=False) as board:
        base = board.server.url
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                results = [_first_load(browser, base, number) for number in range(1, loads + 1)]
            finally:
                browser.close()
    times = [r["filled_s"] for r in results]
    sizes = [r["bytes"] for r in results]
    time_s, size = statistics.median(times), statistics.median(sizes)
    bench.add(
        SECTION,
        f"all six cards filled after the navigation's start (median of {loads}; each: "
        + ", ".join(f"{t:.2f}" for t in times)
        + ")",
        f"{time_s:.2f} s",
        f"≤ {TIME_GOAL:g} s",
        at_most(time_s, TIME_GOAL),
    )
    bench.add(
        SECTION,
        f"bytes on the wire until then, compressed (median; {results[0]['responses']} responses)",
        f"{size / 1000:,.1f} kB",
        f"≤ {BYTES_GOAL / 1000:g} kB",
        at_most(size, BYTES_GOAL),
    )
    bench.details["first_load"] = results


def _first_load(browser: Any, base: str, number: int) -> dict[str, Any]:
    """Log user<number> in, empty the cache, open the dashboard; time and bytes until filled."""
    context = browser.new_context(locale="en-GB")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(base + "/")
        page.wait_for_selector("#kc-form-login")
        page.fill("#username", f"user{number:04d}")
        page.fill("#password", f"pw-user{number:04d}")
        page.click("#kc-login")
        page.wait_for_selector("#user-menu")
        page.goto("about:blank")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.clearBrowserCache")
        received: dict[str, float] = {}
        cdp.on(
            "Network.loadingFinished",
            lambda event: received.update({event["requestId"]: event["encodedDataLength"]}),
        )
        page.add_init_script(WATCH % list(CARDS))
        page.goto(base + "/")
        page.wait_for_function("() => window.__filled !== undefined", polling=100, timeout=30_000)
        filled_ms = float(page.evaluate("() => window.__filled"))
        total = sum(received.values())
        return {"filled_s": round(filled_ms / 1000, 3), "bytes": int(total), "responses": len(received)}
    finally:
        context.close()
