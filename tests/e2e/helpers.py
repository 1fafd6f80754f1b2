"""Helpers of the browser suite: page watching, axe-core, settling."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, ConsoleMessage, Error, Page, Route

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
# Every card has left its skeleton (but those the user's layout hides or folds: they wait), the
# user menu's lines have landed (a GitLab profile still being fetched asks again) and htmx has
# finished swapping and settling.
SETTLED = """() => !document.querySelector(
  '.widget-card:not(.is-collapsed):not(.is-hidden-card) .widget-content.is-loading,'
  + '.user-menu__pending, .htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"""
# Finite animations and transitions (a fade-in, a focus style easing in) have run their course.
ANIMATIONS_DONE = """() => Promise.all(document.getAnimations()
  .filter((a) => a.effect && a.effect.getComputedTiming().iterations !== Infinity)
  .map((a) => a.finished.catch(() => null)))"""

# Headless Chromium keeps every page visible: a test tells the page otherwise, as a browser would
# when the person switches tabs or locks the screen (`set_tab_hidden`).
_TAB_HIDDEN = """(hidden) => {
  if (hidden) {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
  } else {
    delete document.visibilityState;
    delete document.hidden;
  }
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def let_go(route: Route, abort: bool = False) -> None:
    """Ends a route a test held back: sent on (or aborted), or handed back to Playwright with
    `fallback()` when the request has been ended meanwhile: dropped by the page (a poll replaced,
    a timeout) or sent on by an `unroute` of its pattern (checked: it reaches the portal).

    Playwright answers "Route is already handled!" then, and keeps the test's handler waiting for
    good; when that coroutine is collected, in whichever later test, it is reported as an
    unraisable exception and fails that test (as in playwright-python #1402). `fallback()` ends
    the handler without asking the browser anything."""
    try:
        if abort:
            route.abort()
        else:
            route.continue_()
    except Error:
        route.fallback()


def placed(page: Page) -> None:
    """Waits for the next frame to be drawn: the cards are placed when their sizes are known,
    just before a frame is painted (a resize observer), not yet when a script or swap that
    resized them returns."""
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def set_tab_hidden(page: Page, hidden: bool) -> None:
    """The page's tab hidden (the person is elsewhere) or visible again, with its event."""
    page.evaluate(_TAB_HIDDEN, hidden)


# Every layout shift, with where everything was laid out when the HTML was parsed. A frame drawn
# while the HTML was still arriving (the tools' heading alone on its line, the account menu
# without its name) is the browser's own doing, not the page's: its shift is reported with the
# next frame, which may come after parsing ended, but it only brings the screen to the layout
# parsing ended with. So `window.__moved()` lists the shifts after parsing in which something
# ended up elsewhere than parsing left it (or was not there yet). A shift's rectangles are what
# was painted, not boxes: they are shown, not compared. An init script (Page.add_init_script).
WATCH_MOVES = """
window.__shifts = [];
const named = (node) => (node ? node.id || node.className || node.nodeName : "?");
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.hadRecentInput) continue;
    const sources = entry.sources.map((s) => ({
      node: s.node, from: s.previousRect.toJSON(), to: s.currentRect.toJSON(),
    }));
    window.__shifts.push({ value: entry.value, at: Math.round(entry.startTime), sources: sources });
  }
}).observe({ type: "layout-shift", buffered: true });
const near = (a, b) => ["x", "y", "width", "height"].every((k) => Math.abs(a[k] - b[k]) < 0.5);
const stayed = (node) =>
  window.__laidOut.has(node) && near(window.__laidOut.get(node), node.getBoundingClientRect());
window.__moved = () => window.__shifts
  .filter((s) => s.at >= Math.floor(window.__parsedAt))
  .filter((s) => !s.sources.every((o) => stayed(o.node)))
  .map((s) => ({ value: s.value, at: s.at, sources: s.sources.map((o) => [named(o.node), o.from, o.to]) }));
window.__shiftTotal = () => window.__shifts.reduce((sum, s) => sum + s.value, 0);
window.__named = () => window.__shifts.map((s) => ({
  value: s.value, at: s.at, sources: s.sources.map((o) => named(o.node)),
}));
document.addEventListener("DOMContentLoaded", () => {
  window.__parsedAt = performance.now();  // before portal.js's own handler: registered first
  const boxes = [...document.body.querySelectorAll("*")].map((e) => [e, e.getBoundingClientRect().toJSON()]);
  window.__laidOut = new Map(boxes);
});
"""

OpenPage = Callable[..., Page]

# A CSP violation, however it happens, is reported to the test through an exposed binding.
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__portalCspViolation(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


@dataclass
class PageProblems:
    """What went wrong in the pages of one test; expected console lines can be allowed."""

    console: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # answers of 400 and above: which resource

    def allow_console(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not any(p.search(message.text) for p in self.allowed):
            self.console.append(message.text)


def run_axe(page: Page, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """axe-core's verdict on the page as it is now.

    The script is evaluated through the DevTools protocol: a <script> tag would be inline
    code, which the portal's CSP rightly refuses.
    """
    if not AXE.exists():
        raise RuntimeError(f"{AXE} is missing: `npm ci` in tests/e2e (make test does it)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result: dict[str, Any] = page.evaluate("(options) => axe.run(document, options)", options or {})
    return result


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        for node in violation["nodes"][:5]:
            lines.append(
                f"{violation['id']} ({violation['impact']}): {node['target']} {node['failureSummary']}"
            )
    return "\n".join(lines)


def watched_page(context: BrowserContext, problems: PageProblems) -> Page:
    """A new page of `context` whose console errors, uncaught exceptions and CSP violations
    are noted in `problems`."""
    context.expose_binding("__portalCspViolation", lambda _source, text: problems.csp.append(text))
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.on("console", problems.on_console)
    page.on("pageerror", lambda error: problems.console.append(f"uncaught: {error}"))
    return page
