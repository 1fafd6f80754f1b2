"""The page as a whole, at the sizes people use: the header and user menu on a phone, the cards
packed in the width of a wide screen, the most urgent cards in the first screen."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from .conftest import CACHE_TTL, REFRESH
from .helpers import SETTLED, OpenPage, PageProblems, let_go, placed

# Each visible card's box, relative to the grid, and the grid's own width.
CARD_BOXES = """() => {
  const grid = document.querySelector("#widget-grid").getBoundingClientRect();
  const cards = [...document.querySelectorAll("#widget-grid > .widget-card")].filter((c) => c.offsetParent);
  return {
    width: grid.width,
    gap: parseFloat(getComputedStyle(document.querySelector("#widget-grid")).columnGap),
    cards: cards.map((c) => {
      const b = c.getBoundingClientRect();
      const x = grid.left;
      const y = grid.top;
      return { id: c.id, left: b.left - x, right: b.right - x, top: b.top - y, bottom: b.bottom - y };
    }),
  };
}"""


def _box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    return box


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_user_menu_stays_inside_a_phone_screen(open_page: OpenPage, language: str) -> None:
    page = open_page("/", language=language, width=390, height=844)
    page.click("#user-menu summary")
    panel = _box(page, ".user-menu__panel")
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 390, panel
    for part in (".user-menu__name", "p.user-menu__detail"):
        box = _box(page, f".user-menu__panel {part}")
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, (part, box)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    # Each person's initials stay a disc, beside a label that wraps onto two lines too (a
    # person with many roles and groups, as the demo's Camille).
    page.eval_on_selector_all(
        ".user-menu__switch-option > span:last-child",
        "(els, more) => els.forEach((el) => { el.textContent += more; })",
        " · Administrators, Team A, Team B, On call, Security",
    )
    avatars = page.eval_on_selector_all(
        ".user-menu__panel .user-chip__avatar",
        "(els) => els.map((el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; })",
    )
    assert avatars and all(abs(width - height) < 1 for width, height in avatars), avatars


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_phone_header_is_one_row_with_the_name_and_one_demo_marker(
    open_page: OpenPage, language: str
) -> None:
    page = open_page("/", language=language, width=390, height=844)
    header = _box(page, ".portal-navbar")
    assert header["height"] < 64, header  # one row of controls
    name = page.locator(".user-chip__name")
    assert name.is_visible()
    # The first name, whole, beside the demo marker (it was "Ca…"); the menu has the full name.
    assert name.inner_text() == "Camille"
    assert name.evaluate("(el) => el.scrollWidth <= el.clientWidth")
    page.set_viewport_size({"width": 1280, "height": 800})
    assert name.inner_text() == "Camille Demo"
    assert page.locator(".demo-badge").count() == 1
    assert page.locator(".user-chip .tag").count() == 0  # not said a second time in the chip


def test_the_menu_names_roles_as_the_configuration_does(open_page: OpenPage) -> None:
    """The e2e portal names no role (auth.role_labels is empty): no raw Keycloak name is shown."""
    page = open_page("/")
    page.click("#user-menu summary")
    menu = page.locator(".user-menu__panel").inner_text()
    assert "portal-admin" not in menu and "/admins" not in menu


def test_the_first_card_starts_in_the_first_screen(open_page: OpenPage) -> None:
    page = open_page("/", width=1280, height=720)
    assert _box(page, "#widget-grid > .widget-card >> nth=0")["y"] < 400
    phone = open_page("/", width=390, height=844)
    assert (
        _box(phone, "#widget-grid > .widget-card >> nth=0")["y"] < 600
    )  # the tiles take two or three short rows


def _holes(layout: dict[str, Any]) -> list[str]:
    """Cards with empty space above them: neither the grid's top nor a card's bottom there."""
    found = []
    gap = layout["gap"]
    for card in layout["cards"]:
        if card["top"] < 1:
            continue
        above = [
            other
            for other in layout["cards"]
            if other is not card
            and other["left"] < card["right"] - 1
            and other["right"] > card["left"] + 1
            and other["bottom"] <= card["top"] + 1
        ]
        # Every column under the card ends right above it (a wide card may leave a sliver).
        reach = max((other["bottom"] for other in above), default=0)
        if card["top"] - reach > gap + 8:
            found.append(f"{card['id']}: {card['top'] - reach:.0f} px empty above")
    return found


@pytest.mark.parametrize("width", [1280, 1440, 1920])
def test_the_cards_fill_the_width_without_holes(open_page: OpenPage, width: int) -> None:
    page = open_page("/", width=width, height=900)
    page.wait_for_function("() => document.querySelector('#widget-grid.is-packed')")
    placed(page)  # placed again after the last card's data replaced its skeleton
    layout = page.evaluate(CARD_BOXES)
    assert len(layout["cards"]) == 6
    rightmost = max(card["right"] for card in layout["cards"])
    assert rightmost > layout["width"] - 2, layout  # the last column is used
    assert not _holes(layout), layout
    # The width is used: four columns at 1920 px, three at 1280 and 1440.
    columns = {round(card["left"]) for card in layout["cards"]}
    assert len(columns) >= (4 if width >= 1920 else 3) - 1, layout


def test_a_narrowed_window_gets_fewer_columns_and_a_widened_one_more(open_page: OpenPage) -> None:
    """The window snapped to half the screen and back: the cards were kept in three columns,
    squeezed to 141 px each at 700 px, until a reload."""
    page = open_page("/", width=1440, height=900)
    placed(page)
    for width, columns in ((1440, 3), (1000, 2), (700, 1), (1440, 3)):
        page.set_viewport_size({"width": width, "height": 900})
        placed(page)
        assert page.get_attribute("#widget-grid", "data-columns") == str(columns), width
        layout = page.evaluate(CARD_BOXES)
        narrowest = min(card["right"] - card["left"] for card in layout["cards"])
        assert narrowest >= min(336, layout["width"]) - 1, (width, layout)  # 21rem, the least a column gets
        assert max(card["right"] for card in layout["cards"]) <= layout["width"] + 1, (width, layout)
        assert not _holes(layout), (width, layout)


# Whether any card has a poll in flight (portal.js marks it at htmx:beforeRequest, synchronously).
POLL_SENT = """() => [...document.querySelectorAll("#widget-grid .widget-card__body")]
  .some((body) => body._portalPoll && body._portalPoll.inFlight)"""


def test_an_unreachable_portal_is_said_at_the_top_and_retried_with_a_backoff(
    open_page: OpenPage, problems: PageProblems
) -> None:
    """The portal itself down while the page is open (every request to it fails), then back."""
    problems.allow_console("Failed to load resource|ERR_FAILED|htmx:afterRequest|htmx:sendError")
    page = open_page("/", before=lambda p: p.clock.install())
    # An installed clock still runs at the real pace; paused, the countdown moves only with
    # run_for (a slow machine would otherwise pass "2 s" before it is read). Paused a little
    # ahead: the page's clock goes on while the call travels, and it cannot be paused in its past.
    page.clock.pause_at(datetime.fromtimestamp(page.evaluate("Date.now()") / 1000 + 2, tz=UTC))
    refused: list[str] = []

    def refuse(route: Route) -> None:
        refused.append(route.request.url)
        route.abort()

    page.route("**/widgets/**", refuse)
    page.route("**/healthz", refuse)
    # A poll sent before the routes (the cards take turns, about one a second) is answered: it
    # must land first, or it is taken for the one that fails and nothing fails (CI, once).
    page.wait_for_function(f"() => !({POLL_SENT})()")
    banner = page.locator("#portal-offline")
    for _ in range(REFRESH * 2):  # the next poll of any card fails
        page.clock.run_for(1000)
        # Stop the clock as soon as a poll is sent, read on the page itself: its failure reaches
        # the page in real time, and the route's handler may run only during the next call, so
        # one more second could pass with the banner already up ("Next try in 1 s").
        if refused or page.evaluate(POLL_SENT):
            break
    expect(banner).to_be_visible()
    assert _box(page, "#portal-offline")["y"] < 150  # at the top, not below the fold
    when = page.locator("#portal-offline-when")
    expect(when).to_have_text("Next try in 2 s.")
    page.clock.run_for(2000)  # the first try fails: the next one waits twice as long
    expect(when).to_have_text("Next try in 4 s.")
    page.mouse.wheel(0, 1500)
    assert _box(page, "#portal-offline")["y"] < 150  # held under the navbar while scrolling
    page.unroute("**/widgets/**")
    page.unroute("**/healthz")
    page.clock.resume()  # htmx settles its swaps on timers
    page.locator("#portal-offline-retry").click()  # no need to wait: tried at once
    expect(banner).to_be_hidden()
    page.wait_for_function(SETTLED)
    assert page.locator(".widget-content.is-error").count() == 0


def test_the_persons_own_connection_lost_is_said_at_once_and_the_page_is_back_with_it(
    open_page: OpenPage, problems: PageProblems
) -> None:
    """The browser loses its network (a train, the Wi-Fi): said at once, as the person's own
    connection, not at the next card's poll as the portal's; back as soon as the network is."""
    problems.allow_console(
        "Failed to load resource|ERR_INTERNET_DISCONNECTED|htmx:afterRequest|htmx:sendError"
    )
    page = open_page("/", language="fr")
    banner = page.locator("#portal-offline")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.context.set_offline(True)
    expect(banner).to_be_visible(timeout=1500)  # the cards poll every few seconds at most
    expect(banner.locator(".portal-offline__text")).to_have_text(
        "Vous êtes hors ligne\u00a0: les cartes montrent ce qu’elles ont reçu en dernier,"
        " et se mettent à jour dès que votre connexion revient."
    )
    page.wait_for_timeout(7000)  # the backoff would have tried twice (2 s, then 4 s)
    # Nothing can answer without a network: no try is made and no countdown runs meanwhile.
    assert not [url for url in asked if "/healthz" in url], asked
    expect(page.locator("#portal-offline-when")).to_be_hidden()
    expect(page.locator("#portal-offline-retry")).to_be_hidden()  # a try bound to fail
    page.context.set_offline(False)
    # Tried at once when the network is back: the banner goes, the cards poll again.
    expect(banner).to_be_hidden(timeout=3000)
    page.wait_for_function(SETTLED)
    assert page.locator(".widget-content.is-error").count() == 0


def test_a_screen_reader_hears_once_that_the_portal_is_back(
    open_page: OpenPage, problems: PageProblems
) -> None:
    """The banner "You are offline" is an alert, heard when it shows; it went without a word, and
    a person who cannot see it never learnt that the cards were live again."""
    problems.allow_console(
        "Failed to load resource|ERR_INTERNET_DISCONNECTED|htmx:afterRequest|htmx:sendError"
    )
    page = open_page("/", language="fr")
    back = page.locator("#portal-back")
    assert back.get_attribute("role") == "status" and back.inner_text() == ""
    for _ in range(2):  # each time it is back, once
        page.context.set_offline(True)
        expect(page.locator("#portal-offline")).to_be_visible(timeout=1500)
        expect(back).to_have_text("")
        page.context.set_offline(False)
        expect(page.locator("#portal-offline")).to_be_hidden(timeout=3000)
        expect(back).to_have_text("Le portail est de nouveau joignable\u00a0: les cartes se mettent à jour.")


# How many card heights the page has kept for the next visit.
KEPT_HEIGHTS = """() => Object.keys(
  (JSON.parse(localStorage.getItem("portal.cardHeights")) || {}).heights || {}).length >= 6"""
# Each card body's reserved height (early.js's rule) and its height now.
RESERVED = """() => [...document.querySelectorAll("#widget-grid .widget-card__body")].map((body) => ({
  id: body.id,
  reserved: (window.portalReservedHeights ? [...window.portalReservedHeights.cssRules] : [])
    .filter((rule) => rule.selectorText === "#" + body.id)
    .map((rule) => parseFloat(rule.style.minHeight))[0] || 0,
  height: body.offsetHeight,
  width: body.offsetWidth,
  skeleton: Boolean(body.querySelector(".widget-skeleton")),
  text: body.innerText,
}))"""


def test_a_second_visit_keeps_each_card_at_its_last_height_until_its_data_arrives(
    open_page: OpenPage,
) -> None:
    page = open_page("/", width=1280, height=900)
    page.wait_for_function(KEPT_HEIGHTS)
    page.wait_for_function(SETTLED)
    cards = page.evaluate(RESERVED)
    first = {card["id"]: card["height"] for card in cards}
    first_seen = {card["id"]: (card["width"], card["text"]) for card in cards}
    # The cards' data held back on the second visit: the skeletons show, at the kept heights.
    # (A card whose data is still fresh in the portal's cache comes with the page, at its height.)
    page.goto("about:blank")
    time.sleep(CACHE_TTL + 0.3)  # the status card's data expires: that card, at least, loads itself
    held: list[Route] = []
    holding = [True]
    page.route("**/widgets/**", lambda route: held.append(route) if holding[0] else route.continue_())
    page.goto("/")
    page.wait_for_function("() => document.querySelector('#widget-grid.is-shown')")
    again = page.evaluate(RESERVED)
    assert {card["id"] for card in again} == set(first)
    assert next(card for card in again if card["id"] == "widget-status-body")["skeleton"]
    compared = 0
    for card in again:
        if card["skeleton"]:
            assert card["reserved"] == first[card["id"]], card
            assert card["height"] >= first[card["id"]] - 1, card
        else:
            assert card["reserved"] == 0, card
            # A wide card takes two columns only where that leaves no hole, and the first visit
            # placed it while the others were still loading: with every height known at once,
            # the second visit may give it one column (so another height). And a minute may have
            # passed ("4 min ago" became "5 min ago", a line longer). Same width and words, same height.
            if (card["width"], card["text"]) == first_seen[card["id"]]:
                assert abs(card["height"] - first[card["id"]]) <= 1, card
                compared += 1
    assert compared or all(card["skeleton"] for card in again), again
    came_with_page = {card["id"]: card for card in again if not card["skeleton"]}
    holding[0] = False
    for route in held:
        route.continue_()
    page.wait_for_function(SETTLED)
    settled = page.evaluate(RESERVED)
    assert all(card["reserved"] == 0 for card in settled)  # lifted with the data
    for card in settled:  # what came with the page did not move when the rest arrived
        if card["id"] in came_with_page:
            assert abs(card["height"] - came_with_page[card["id"]]["height"]) <= 1, card


# Each run of an alert's name, or of a label's value, between two break opportunities (<wbr>):
# the runs that take more than one line, with the name they belong to.
SPLIT_RUNS = """() => [...document.querySelectorAll(
  "#widget-incidents :is(.alert-row__name, .alert-label__value)")]
  .flatMap((el) => {
    const runs = [];
    const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) runs.push(node);
    return runs.filter((node) => {
      const range = document.createRange();
      range.selectNodeContents(node);
      return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1;
    }).map((node) => `${el.textContent}: "${node.textContent}"`);
  })"""


@pytest.mark.parametrize("language", ["en", "fr"])
def test_on_a_phone_an_alert_name_breaks_between_its_words_only(open_page: OpenPage, language: str) -> None:
    """At 390 px a long alert name ("NodeMemoryHighUtilization") keeps its line when it fits,
    the state going under it; a longer one or a pod's name breaks at a CamelCase hump or after
    a '-', never inside a word; and the text read, copied and named stays the name itself."""
    page = open_page("/", language=language, width=390, height=844, has_touch=True, is_mobile=True)
    page.evaluate(
        "() => document.querySelectorAll('details.alert-row__more').forEach((d) => { d.open = true; })"
    )
    names = page.locator("#widget-incidents .alert-row__name")
    assert names.count() > 0
    assert page.evaluate(SPLIT_RUNS) == []
    name = names.filter(has_text="NodeMemoryHighUtilization")
    assert name.evaluate("(h) => h.getClientRects().length === 1 && h.offsetHeight < 30")  # one line
    assert name.inner_text() == "NodeMemoryHighUtilization"  # no character added
    expect(page.get_by_role("heading", name="NodeMemoryHighUtilization", exact=True)).to_have_count(1)
    # As Chromium itself names it for screen readers (it reads a space at each <wbr>).
    tree = page.context.new_cdp_session(page).send("Accessibility.getFullAXTree")
    headings = {
        n.get("name", {}).get("value") for n in tree["nodes"] if n.get("role", {}).get("value") == "heading"
    }
    assert "NodeMemoryHighUtilization" in headings and "Node Memory High Utilization" not in headings
    value = page.locator("#widget-incidents .alert-label__value", has_text="-").first  # a pod's, a node's
    assert "-<wbr>" in value.inner_html() and "<wbr>" not in value.inner_text()


def test_a_poll_no_answer_ends_does_not_freeze_its_card(open_page: OpenPage, problems: PageProblems) -> None:
    """A card's poll that gets no answer at all (a proxy holding it) ends at htmx-config's
    timeout: the card polls again and is back, instead of waiting for good behind it."""
    problems.allow_console("Failed to load resource|htmx:afterRequest|htmx:timeout")
    page = open_page("/")
    config = page.evaluate("() => JSON.parse(document.querySelector('meta[name=htmx-config]').content)")
    # Above any answer the portal gives: a change reads, then writes, each call within the
    # upstream's timeout (60 s at most).
    assert config["timeout"] == 150_000
    page.evaluate("() => { htmx.config.timeout = 1500; }")  # the same, sooner
    held: list[Route] = []
    page.route("**/widgets/status*", lambda route: held.append(route))  # never answered
    asked: list[str] = []
    page.on(
        "request", lambda request: asked.append(request.url) if "/widgets/status" in request.url else None
    )
    page.evaluate("htmx.trigger(document.getElementById('widget-status-body'), 'poll')")
    page.wait_for_timeout(2500)  # the held poll timed out meanwhile
    # Two when the card's own turn came just before the poll asked here (htmx queued that one
    # behind it, and sent it when the first timed out).
    assert 1 <= len(held) <= 2
    for route in held:
        let_go(route, abort=True)  # the browser gave up on it
    page.unroute("**/widgets/status*")
    page.evaluate("htmx.trigger(document.getElementById('widget-status-body'), 'poll')")
    page.wait_for_function(SETTLED)
    assert len(asked) >= 2, "the card never polled again after the poll that got no answer"
    expect(page.locator("#portal-offline")).to_be_hidden(timeout=10_000)
    assert page.locator("#widget-status .widget-content.is-error").count() == 0
