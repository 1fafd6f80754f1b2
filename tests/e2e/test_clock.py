"""Times relative to now ("5 min ago", "running for 3 min") are counted from the portal's clock,
whatever the clock of the person's computer says."""

from __future__ import annotations

import re
import time
from datetime import datetime

from playwright.sync_api import Page

from .helpers import OpenPage

SKEW = 12 * 60  # seconds: a laptop whose clock was never set right
UNITS = {"sec": 1, "min": 60, "hr": 3600, "day": 86400, "wk": 604800, "mo": 2592000, "yr": 31536000}
AMOUNT = re.compile(r"(\d+)\s*(sec|min|hr|day|wk|mo|yr)")

# Each relative time a card shows: what it says, and the moment it counts from.
RELATIVE_TIMES = """() => [...document.querySelectorAll(
  '.widget-card time[data-ago], .widget-card [data-since]:not([hidden])')].map((node) =>
  [node.textContent, node.getAttribute("datetime") || node.getAttribute("data-since")])"""

POLL_EVERY_CARD = """() => document.querySelectorAll(".widget-card__body")
  .forEach((body) => htmx.trigger(body, "poll"))"""


def _seconds(text: str) -> tuple[int, int]:
    """What a relative time says, in seconds, and its smallest unit ("just now": 0, a minute)."""
    found = [(int(n), UNITS[unit]) for n, unit in AMOUNT.findall(text)]
    if not found:
        assert "just now" in text, text
        return 0, 60
    return sum(n * unit for n, unit in found), min(unit for _, unit in found)


def _counted_from_the_portal(page: Page, since: float, ahead: float = 0) -> None:
    """Each relative time says how long ago its moment was by this machine's clock (the
    portal's), give or take its smallest unit: written at some time between `since` and now,
    plus up to `ahead` seconds the page's clock was moved on."""
    shown = page.evaluate(RELATIVE_TIMES)
    assert shown, "the dashboard shows times relative to now"
    for said, moment in shown:
        # Written as the durations beside them are: "2 min ago", not English's short "2 min. ago".
        assert ". " not in said, said
        seconds, unit = _seconds(said)
        at = datetime.fromisoformat(moment).timestamp()
        earliest, latest = since - at, time.time() + ahead - at
        assert earliest - unit - 2 <= seconds <= latest + unit + 2, f"{said!r}, {latest:.0f} s after {moment}"


def test_a_computer_clock_minutes_off_still_reads_the_portal_times(open_page: OpenPage) -> None:
    for offset in (0, -SKEW, SKEW):  # right, behind, then ahead
        opened = time.time()
        page = open_page("/", before=lambda p, offset=offset: p.clock.install(time=time.time() + offset))
        assert abs(page.evaluate("() => Date.now()") / 1000 - time.time() - offset) < 60
        _counted_from_the_portal(page, opened)
        # After the cards' answers (their Date header), the page still counts from the portal's
        # clock: moved on 30 s, it writes its times again (at some moment of those 30 s).
        page.evaluate(POLL_EVERY_CARD)
        page.wait_for_function("() => !document.querySelector('.htmx-request')")
        written = time.time()
        page.clock.run_for(30_000)
        _counted_from_the_portal(page, written, ahead=30)
