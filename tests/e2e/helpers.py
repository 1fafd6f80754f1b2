"""Helpers of the browser suite: page watching, axe-core, settling."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Page

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

OpenPage = Callable[..., Page]


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
