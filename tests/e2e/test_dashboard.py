"""The dashboard loads: every configured widget shows data, tiles get their status, nothing jumps."""

from __future__ import annotations

import time

from playwright.sync_api import Page, Route

from .conftest import CACHE_TTL
from .helpers import ANIMATIONS_DONE, WATCH_MOVES, OpenPage, let_go

# Where the status card puts its summary, rows and columns (in the skeleton or the data).
LAYOUT = """(parts) => {
  const card = document.querySelector("#widget-status");
  const box = (el) => el.getBoundingClientRect();
  const pill = card.querySelector(parts.pill);
  return {
    summaryTop: box(pill).top,
    pillHeight: box(pill).height,
    rowHeight: box(card.querySelector(parts.row)).height,
    columns: [...new Set([...card.querySelectorAll(".status-group")].map((g) => Math.round(box(g).left)))],
  };
}"""


def _shift(page: Page) -> float:
    page.wait_for_timeout(500)  # layout-shift entries are delivered asynchronously
    return float(page.evaluate("() => window.__shiftTotal()"))


def test_every_configured_widget_shows_data(open_page: OpenPage) -> None:
    page = open_page("/")
    cards = page.locator(".widget-card")
    assert cards.count() >= 1
    for index in range(cards.count()):
        content = cards.nth(index).locator(".widget-content")
        state = content.get_attribute("class") or ""
        assert "is-ok" in state, f"card {index} is not showing data: {state}"
        assert content.get_attribute("data-version")
    status = page.locator("#widget-status")
    assert status.locator(".status-row").count() == 13
    assert status.locator(".status-row.is-down").count() == 1
    assert status.locator(".incident-note").count() == 2
    # The first answer also sets every tile's live status dot (out of band).
    dots = page.locator(".tile-dot")
    assert dots.count() == 9
    assert page.locator(".tile-dot.is-unknown").count() == 0
    assert page.locator("#tile-dot-sonarqube").get_attribute("aria-label") == "Status: Down"
    assert page.locator("#widget-status .widget-card__checked").inner_text().startswith("Updated at ")


def test_the_skeleton_has_the_layout_of_the_data(open_page: OpenPage) -> None:
    """The skeleton's summary row and rows sit where the data's will."""
    # Data fresh in the cache comes with the page (test_first_paint.py): let it expire first.
    time.sleep(CACHE_TTL + 0.3)
    # Hold the first answer back so the skeleton can be measured, then let it through.
    held: list[Route] = []

    def hold(page: Page) -> None:
        page.route("**/widgets/status", lambda route: held.append(route))

    page = open_page("/", settle=False, before=hold)
    page.wait_for_function("() => document.querySelector('.widget-skeleton')")
    page.evaluate(ANIMATIONS_DONE)
    skeleton = page.evaluate(LAYOUT, {"pill": ".skeleton--pill", "row": ".skeleton-row"})
    first = list(held)
    for route in first:
        route.continue_()
    page.unroute("**/widgets/status")  # a later poll is not held for good
    for route in held[len(first) :]:
        let_go(route)  # held meanwhile: the unroute sent it on
    page.wait_for_function("() => !document.querySelector('.widget-skeleton')")
    page.evaluate(ANIMATIONS_DONE)  # the data fades in from 3 px lower
    data = page.evaluate(LAYOUT, {"pill": ".status-pill", "row": ".status-row"})
    assert data["summaryTop"] == skeleton["summaryTop"]
    assert data["pillHeight"] == skeleton["pillHeight"]
    assert abs(data["rowHeight"] - skeleton["rowHeight"]) < 1
    assert data["columns"] == skeleton["columns"]


def test_nothing_jumps_when_data_arrives(open_page: OpenPage) -> None:
    """First visit: only the card's own growth (unknowable rows); next visit: nothing moves once
    the HTML is parsed (a frame the browser drew mid-parse is not the page's doing)."""
    page = open_page("/", settle=False, before=lambda p: p.add_init_script(WATCH_MOVES))
    page.wait_for_function("() => !document.querySelector('.widget-skeleton')")
    first = _shift(page)
    assert first < 0.05, page.evaluate("() => window.__named()")
    page.reload()
    page.wait_for_function("() => !document.querySelector('.widget-skeleton')")
    _shift(page)  # the entries delivered
    assert page.evaluate("() => window.__moved()") == []
