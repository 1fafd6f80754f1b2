"""A personal layout in a real browser: drag a card, move another from the keyboard, hide one,
and find the same layout in a second browser of the same user; axe in edit mode.

The portal here serves three plain test widgets beside the registry's (tests.support.layout_app),
under gunicorn with two workers and its own SQLite database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import APIResponse, Page, Route, expect

from simulators.base import SimServer

from .conftest import Portal, e2e_config, served_portal
from .helpers import OpenPage, PageProblems, describe_violations, placed, run_axe, set_tab_hidden

CARDS = "#widget-grid > .widget-card"


@pytest.fixture(scope="module")
def portal(kuma_server: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """The demo configuration with the plain widgets, and a database of its own."""
    directory = tmp_path_factory.mktemp("portal-layout")
    module = "tests.support.layout_app:app"
    config = e2e_config(kuma_server, only=("status",))
    with served_portal(config, directory, app_module=module) as found:
        yield found


def order(page: Page) -> list[str]:
    return page.locator(CARDS).evaluate_all("(cards) => cards.map((c) => c.dataset.slug)")


def saved(page: Page, text: str = "Layout saved.") -> None:
    expect(page.locator("#layout-status")).to_contain_text(text)
    page.wait_for_function("() => !document.querySelector('#layout-status').textContent.includes('…')")


def edit(page: Page) -> None:
    page.locator("#layout-toggle").click()
    expect(page.locator("#layout-toggle")).to_have_attribute("aria-pressed", "true")


def from_the_default(open_page: OpenPage, **options: Any) -> Page:
    """A page of the plain default layout, whatever earlier tests saved (`options`: open_page's)."""
    page = open_page("/")
    edit(page)
    page.locator("#layout-reset").click()
    expect(page.locator("#layout-status")).to_contain_text("Your team's default layout is back.")
    return open_page("/", **options)


def test_drag_keyboard_hide_and_the_same_layout_in_a_second_browser(open_page: OpenPage) -> None:
    page = from_the_default(open_page)
    assert order(page) == ["status", "alpha", "beta", "gamma"]
    expect(page.locator(".card-edit").first).to_be_hidden()  # the everyday page is calm
    edit(page)

    # The mouse: alpha is dragged by its header onto status's header, and takes its place.
    header = {"x": 80, "y": 24}
    page.locator("#widget-alpha").drag_to(
        page.locator("#widget-status"), source_position=header, target_position=header
    )
    expect(page.locator("#layout-status")).to_contain_text("Alpha moved to position 1 of 4. Layout saved.")
    assert order(page) == ["alpha", "status", "beta", "gamma"]

    # The keyboard: beta's "move up" button, pressed with Enter, keeps the focus and is announced.
    up = page.locator("#widget-beta [data-action='up']")
    up.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#layout-status")).to_contain_text("Beta moved to position 2 of 4. Layout saved.")
    assert order(page) == ["alpha", "beta", "status", "gamma"]
    assert page.evaluate("() => document.activeElement.closest('.widget-card').id") == "widget-beta"
    assert page.locator("#layout-status").get_attribute("aria-live") == "polite"

    # At the ends: said, or the button would look broken; nothing moves, nothing is saved.
    page.locator("#widget-alpha [data-action='up']").click()
    expect(page.locator("#layout-status")).to_have_text("Alpha is already first.")
    page.locator("#widget-gamma [data-action='down']").click()
    expect(page.locator("#layout-status")).to_have_text("Gamma is already last.")
    assert order(page) == ["alpha", "beta", "status", "gamma"]
    # Folding in edit mode names the card, as every other change does.
    page.locator("#widget-alpha .card-fold").click()
    saved(page, "Alpha is folded: only its title shows. Layout saved.")
    page.locator("#widget-alpha .card-fold").click()
    saved(page, "Alpha is unfolded. Layout saved.")

    # Hide gamma; make beta wide.
    page.locator("#widget-gamma [data-action='hide']").click()
    expect(page.locator("#layout-status")).to_contain_text("Gamma is hidden. Layout saved.")
    page.locator("#widget-beta [data-action='width']").click()
    expect(page.locator("#widget-beta [data-action='width']")).to_have_attribute("aria-pressed", "true")
    saved(page)
    page.locator("#widget-alpha .card-fold").focus()  # a card's own control: Escape keeps its meaning
    page.keyboard.press("Escape")
    expect(page.locator("#layout-toggle")).to_have_attribute("aria-pressed", "true")
    page.locator("#widget-beta [data-action='width']").focus()
    page.keyboard.press("Escape")  # on the editor's controls: done, as "Done" does, the focus on the toggle
    expect(page.locator("#layout-toggle")).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("() => document.activeElement.id") == "layout-toggle"
    expect(page.locator("#widget-gamma")).to_be_hidden()

    # A second browser of the same user, on its first load.
    polled: list[str] = []
    other = open_page(
        "/", before=lambda p: p.on("request", lambda r: "/widgets/" in r.url and polled.append(r.url))
    )
    assert order(other) == ["alpha", "beta", "status", "gamma"]
    expect(other.locator("#widget-gamma")).to_be_hidden()
    expect(other.locator("#widget-beta")).to_have_attribute("data-width", "wide")
    expect(other.locator("#widget-beta")).to_have_class(re.compile(r"\bwidget-card--wide\b"))
    expect(other.locator("#widget-alpha")).not_to_have_class(re.compile(r"\bwidget-card--wide\b"))
    expect(other.locator("#widget-alpha")).to_be_visible()
    assert any(url.endswith("/widgets/alpha") for url in polled)
    assert not any(url.endswith("/widgets/gamma") for url in polled)  # a hidden card does not poll
    edit(other)
    expect(other.locator("#widget-gamma")).to_be_visible()  # to be shown again
    expect(other.locator("#widget-gamma [data-action='hide']")).to_have_attribute("aria-pressed", "true")


def test_a_reset_shows_the_default_in_place_and_says_so(open_page: OpenPage) -> None:
    page = from_the_default(open_page)
    edit(page)
    page.locator("#widget-gamma [data-action='hide']").click()
    page.locator("#widget-beta [data-action='up']").click()
    saved(page)
    assert order(page) == ["status", "beta", "alpha", "gamma"]
    page.evaluate("() => { window.__sameDocument = true; }")
    reset = page.locator("#layout-reset")
    reset.focus()
    page.keyboard.press("Enter")
    # No reload: the message is there to be read, the focus and the editing are where they were.
    expect(page.locator("#layout-status")).to_contain_text("Your team's default layout is back.")
    assert order(page) == ["status", "alpha", "beta", "gamma"]
    expect(page.locator("#widget-gamma [data-action='hide']")).to_have_attribute("aria-pressed", "false")
    assert page.evaluate("() => window.__sameDocument === true")
    assert page.evaluate("() => document.activeElement.id") == "layout-reset"
    expect(page.locator("#layout-toggle")).to_have_attribute("aria-pressed", "true")
    # What the page shows is what a new page draws.
    assert order(open_page("/")) == ["status", "alpha", "beta", "gamma"]


def status_of_normal_width(page: Page) -> None:
    """In the edit mode: the status card on one column (the team's default may make it wide)."""
    if page.locator("#widget-status").get_attribute("data-width") == "wide":
        page.locator("#widget-status [data-action='width']").click()
        saved(page, "Service status is of normal width. Layout saved.")


def _width(page: Page, slug: str) -> float:
    return float(page.locator(f"#widget-{slug}").evaluate("(card) => card.getBoundingClientRect().width"))


def test_widening_a_card_shows_at_once_or_says_why_not(open_page: OpenPage) -> None:
    page = from_the_default(open_page, width=1280)
    edit(page)
    narrow = _width(page, "gamma")
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is wide. Layout saved.")
    # At once: no card has changed size for the page to notice (it used to wait for one).
    assert _width(page, "gamma") > 1.8 * narrow
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is of normal width. Layout saved.")
    assert abs(_width(page, "gamma") - narrow) < 1
    # No two columns side by side whose cards end level (a wide card would leave a hole beside
    # it): it keeps one column, and the page says why. Three narrow cards of set heights in the
    # three columns: 900, 300 and 620 px.
    status_of_normal_width(page)
    page.evaluate(TALL_CARDS)
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is wide, but there is no room beside it here: it keeps one column until there is.")
    assert abs(_width(page, "gamma") - narrow) < 1
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is of normal width. Layout saved.")


# Heights set through a constructed sheet (the page's CSP allows no <style>).
TALL_CARDS = """() => {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync("#widget-status { min-height: 900px } #widget-alpha { min-height: 300px } "
    + "#widget-beta { min-height: 620px }");
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}"""


# Two tall cards, a short one, and a wide card (gamma: 800 px, or as given) that finds level tops
# only below the tall ones. Called again, it sets gamma's height anew.
BESIDE_THE_SHORT_ONE = """(gamma = 800) => {
  const sheet = window.__heights || new CSSStyleSheet();
  sheet.replaceSync("#widget-status, #widget-alpha { height: 1200px; overflow: hidden } "
    + "#widget-beta { height: 500px; overflow: hidden } "
    + `#widget-gamma { height: ${gamma}px; overflow: hidden }`);
  if (!window.__heights) document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  window.__heights = sheet;
}"""
# Whether gamma shows only a failure (its content in the error state).
GAMMA_FAILING = """(failing) => document.querySelector("#widget-gamma .widget-content")
  .classList.toggle("is-error", failing)"""


def _box_of(page: Page, slug: str) -> dict[str, float]:
    box: dict[str, float] = page.locator(f"#widget-{slug}").evaluate(
        "(card) => { const r = card.getBoundingClientRect(); "
        "return { left: r.left, top: r.top + scrollY, bottom: r.bottom + scrollY }; }"
    )
    return box


def test_a_wide_card_goes_before_a_short_one_rather_than_below_everything_or_beside_a_hole(
    open_page: OpenPage,
) -> None:
    """Four columns: level tops only under the two tall cards (1,200 px) would leave two columns
    empty beside them for the whole height; beside the short card (500 px), the column next to
    it would stay empty above the wide card. Placed one card sooner, it takes the level top of
    the two free columns and the short card goes under it: the page ends 700 px higher, and no
    column is empty between two cards."""
    page = from_the_default(open_page, width=1920)
    edit(page)
    status_of_normal_width(page)
    page.evaluate(BESIDE_THE_SHORT_ONE)
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is wide. Layout saved.")
    gamma, beta, status = (_box_of(page, slug) for slug in ("gamma", "beta", "status"))
    assert gamma["left"] == beta["left"] and gamma["top"] == status["top"], (gamma, beta, status)
    assert beta["top"] >= gamma["bottom"] and beta["top"] - gamma["bottom"] < 40, (gamma, beta)
    assert beta["bottom"] < status["bottom"] + 800 - 160
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is of normal width. Layout saved.")


def test_a_card_whose_data_comes_back_after_a_failure_has_every_card_placed_afresh(
    open_page: OpenPage,
) -> None:
    """Placed while it showed only a failure (100 px), the wide card sat under the tall cards;
    had its places been kept once its data came (800 px), it would have stayed there all day,
    two columns empty beside the tall ones. Placed afresh, it takes the level top beside them."""
    page = from_the_default(open_page, width=1920)
    edit(page)
    status_of_normal_width(page)
    page.evaluate(BESIDE_THE_SHORT_ONE, 100)
    page.evaluate(GAMMA_FAILING, True)
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is wide. Layout saved.")
    gamma, status = _box_of(page, "gamma"), _box_of(page, "status")
    assert gamma["top"] >= status["bottom"], (gamma, status)  # small: under the tall cards
    page.evaluate(GAMMA_FAILING, False)
    page.evaluate(BESIDE_THE_SHORT_ONE, 800)
    page.wait_for_function(
        "() => document.querySelector('#widget-gamma').getBoundingClientRect().height > 700"
    )
    placed(page)
    gamma, beta, status = (_box_of(page, slug) for slug in ("gamma", "beta", "status"))
    assert gamma["top"] == status["top"] and beta["top"] >= gamma["bottom"], (gamma, beta, status)
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is of normal width. Layout saved.")


# A wide card of much text (twice as tall on one column as on two), beside cards of set heights
# that leave no level tops anywhere.
MUCH_TEXT = """() => {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync("#widget-status, #widget-beta { height: 1200px; overflow: hidden } "
    + "#widget-alpha { height: 600px; overflow: hidden }");
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  const text = document.createElement("p");
  text.id = "much-text";
  text.textContent = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(500);
  document.querySelector("#widget-gamma .widget-card__body").append(text);
}"""


def test_a_wide_card_is_placed_by_its_height_at_two_columns(open_page: OpenPage) -> None:
    """Its text wraps at two columns into half the height: measured there, it fits on two
    columns below the tall cards and the page ends higher than with it on one column."""
    page = from_the_default(open_page, width=1920)
    edit(page)
    status_of_normal_width(page)
    page.evaluate(MUCH_TEXT)
    placed(page)
    narrow = _box_of(page, "gamma")
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is wide. Layout saved.")
    wide = _box_of(page, "gamma")
    assert wide["bottom"] < narrow["bottom"] - 160, (narrow, wide)
    page.locator("#widget-gamma [data-action='width']").click()
    saved(page, "Gamma is of normal width. Layout saved.")


def test_collapse_pin_and_new_tab(open_page: OpenPage) -> None:
    page = open_page("/")
    edit(page)
    page.locator("#layout-reset").click()
    expect(page.locator("#layout-status")).to_contain_text("Your team's default layout is back.")
    page = open_page("/")
    fold = page.locator("#widget-status .card-fold")
    fold.click()  # folding works outside the edit mode too
    expect(fold).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#widget-status-body")).to_be_hidden()
    saved(page)
    edit(page)
    page.locator(".tile-item[data-tile='grafana'] .tile-pin").click()
    saved(page, "Grafana is pinned first. Layout saved.")
    page.locator("#layout-new-tab").check()
    saved(page)
    other = open_page("/")
    assert other.locator(".tile-item").first.get_attribute("data-tile") == "grafana"
    assert other.locator(".tile-item a").first.get_attribute("target") == "_blank"
    expect(other.locator("#widget-status-body")).to_be_hidden()
    # The filter: Enter opens the only match (here in a new tab, as chosen); the tool's page is
    # answered here, nothing leaves the machine.
    other.context.route("https://sonar.example.org/**", lambda route: route.fulfill(body="SonarQube"))
    pages = len(other.context.pages)
    other.locator("#tile-filter").fill("o")  # several tools match: Enter opens none of them
    other.locator("#tile-filter").press("Enter")
    other.wait_for_timeout(500)
    assert len(other.context.pages) == pages and other.url.endswith("/")
    with other.context.expect_page() as opened:
        other.locator("#tile-filter").fill("sonar")
        other.locator("#tile-filter").press("Enter")
    opened.value.wait_for_load_state()
    assert opened.value.url == "https://sonar.example.org/"
    opened.value.close()
    # A card's link to a tool follows the same choice (its HTML is everyone's: applied on click).
    other.context.route("https://gitlab.example.org/**", lambda route: route.fulfill(body="GitLab"))
    other.locator("#widget-status .card-fold").click()  # unfolded: it loads
    saved(other)
    monitor = other.locator("#widget-status a[href^='https://gitlab.example.org']").first
    with other.context.expect_page() as opened:
        monitor.click()
    opened.value.wait_for_load_state()
    assert opened.value.url.startswith("https://gitlab.example.org") and other.url.endswith("/")
    opened.value.close()
    edit(other)
    other.locator("#layout-new-tab").uncheck()
    saved(other)
    other.locator("#layout-toggle").click()  # out of the edit mode
    monitor.click()
    other.wait_for_url("https://gitlab.example.org/**")
    assert len(other.context.pages) == pages


# Each word of each tool's name, as the lines it was laid out on: a word on two lines was cut.
WORDS_CUT_IN_TWO = """() => [...document.querySelectorAll('.tool-tile__name')].flatMap((name) => {
  const text = name.firstChild;
  return [...text.textContent.matchAll(/\\S+/g)].filter((word) => {
    const range = document.createRange();
    range.setStart(text, word.index);
    range.setEnd(text, word.index + word[0].length);
    return new Set([...range.getClientRects()].map((line) => Math.round(line.top))).size > 1;
  }).map((word) => word[0]);
})"""


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_phone_in_edit_mode_keeps_every_tool_name_whole(open_page: OpenPage, language: str) -> None:
    """The pin goes above the icon on a phone: the name keeps the tile's width ("GitLa|b" was seen)."""
    page = open_page("/", language=language, width=390, height=844)
    assert page.locator(".tool-tile__name").count() >= 8
    assert page.evaluate(WORDS_CUT_IN_TWO) == []
    edit(page)
    assert page.locator(".tile-pin").first.is_visible()
    assert page.evaluate(WORDS_CUT_IN_TWO) == []
    pin = page.locator(".tile-item").first.locator(".tile-pin").bounding_box()
    dot = page.locator(".tile-item").first.locator(".tile-dot").bounding_box()
    assert pin and dot and dot["y"] >= pin["y"] + pin["height"]  # the dot clear of the pin


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_violation_in_edit_mode(open_page: OpenPage, scheme: str) -> None:
    page = open_page("/", scheme=scheme)
    edit(page)
    page.locator("#widget-beta [data-action='hide']").click()  # a hidden card, as edit mode shows it
    saved(page)
    result = run_axe(page)
    assert result["violations"] == [], describe_violations(result["violations"])
    page.locator("#widget-beta [data-action='hide']").click()
    saved(page)


def drawn_before_a_move(open_page: OpenPage, **options: Any) -> tuple[Page, list[str]]:
    """A laptop's page drawn from the plain default (`options`: open_page's), then a card moved
    on a desktop: the laptop's page, and the order the desktop saved."""
    laptop = from_the_default(open_page, **options)
    desktop = open_page("/")
    edit(desktop)
    desktop.locator("#widget-beta [data-action='up']").click()
    saved(desktop, "Beta moved to position 2 of 4. Layout saved.")
    moved = order(desktop)
    assert moved == ["status", "beta", "alpha", "gamma"]
    assert order(laptop) == ["status", "alpha", "beta", "gamma"]
    return laptop, moved


def test_a_fold_on_a_page_left_open_goes_onto_the_layout_changed_elsewhere_and_shows_it(
    open_page: OpenPage,
) -> None:
    """The laptop's page was drawn before the desktop moved a card. Folding a card there keeps
    both changes: the fold is saved onto the desktop's layout, and the laptop's page says so and
    shows that layout at once (the card moved, the fold made), with nothing to reload."""
    laptop, moved = drawn_before_a_move(open_page)

    laptop.locator("#widget-gamma .card-fold").click()
    saved(laptop, "Layout saved, with the changes made to it on another device or in another tab.")
    expect(laptop.locator("#layout-reload")).to_be_hidden()
    assert order(laptop) == moved  # the desktop's move, shown without a reload
    expect(laptop.locator("#widget-gamma-body")).to_be_hidden()
    expect(laptop.locator("#widget-gamma .card-fold")).to_have_attribute("aria-expanded", "false")
    fresh = open_page("/")
    assert order(fresh) == moved
    expect(fresh.locator("#widget-gamma-body")).to_be_hidden()  # both changes saved

    laptop.locator("#widget-gamma .card-fold").click()  # the laptop now follows that layout
    saved(laptop, "Layout saved.")
    expect(laptop.locator("#widget-gamma-body")).to_be_visible()
    assert order(open_page("/")) == moved


def test_a_page_left_open_shows_the_layout_changed_elsewhere_when_its_person_comes_back(
    open_page: OpenPage,
) -> None:
    """The laptop's page stays open while Camille moves a card on her desktop. A glance away
    and back (a few seconds) asks nothing; coming back after a while (here 20 s, on the page's
    clock), the laptop's page asks for the saved layout and shows the desktop's, and says so.
    Its next change is then a plain save."""
    laptop, moved = drawn_before_a_move(open_page, before=lambda p: p.clock.install())
    asked: list[str] = []
    laptop.on("request", lambda r: asked.append(r.method) if r.url.endswith("/layout") else None)

    set_tab_hidden(laptop, True)
    laptop.clock.fast_forward(3_000)
    set_tab_hidden(laptop, False)
    laptop.wait_for_timeout(500)
    assert asked == [] and order(laptop) == ["status", "alpha", "beta", "gamma"]

    set_tab_hidden(laptop, True)
    laptop.clock.fast_forward(20_000)
    with laptop.expect_response(lambda r: r.url.endswith("/layout") and r.request.method == "GET"):
        set_tab_hidden(laptop, False)
    expect(laptop.locator("#layout-status")).to_have_text(
        "Your layout was changed on another device or in another tab while you were away;"
        " this page shows it now."
    )
    assert order(laptop) == moved
    laptop.locator("#widget-gamma .card-fold").click()
    saved(laptop, "Layout saved.")  # not "…with the changes made to it on another device"
    fresh = open_page("/")
    assert order(fresh) == moved
    expect(fresh.locator("#widget-gamma-body")).to_be_hidden()


def test_a_layout_asked_for_before_a_change_made_meanwhile_is_not_shown_over_it(
    open_page: OpenPage,
) -> None:
    """Back on the laptop, its page asks for the saved layout; the answer is slow, and meanwhile a
    card is folded there (saved onto the desktop's layout). The late answer, from before that
    fold, must not unfold it."""
    laptop, moved = drawn_before_a_move(open_page, before=lambda p: p.clock.install())
    held: list[tuple[Route, APIResponse]] = []

    def answer_now_deliver_later(route: Route) -> None:
        if route.request.method == "GET":
            held.append((route, route.fetch()))  # the portal's answer before the fold
        else:
            route.continue_()

    laptop.route("**/layout", answer_now_deliver_later)
    set_tab_hidden(laptop, True)
    laptop.clock.fast_forward(20_000)
    set_tab_hidden(laptop, False)
    for _ in range(100):
        if held:
            break
        laptop.wait_for_timeout(50)
    assert len(held) == 1
    laptop.locator("#widget-gamma .card-fold").click()
    saved(laptop, "Layout saved, with the changes made to it on another device or in another tab.")
    route, late = held[0]
    route.fulfill(response=late)
    laptop.wait_for_timeout(500)
    expect(laptop.locator("#widget-gamma-body")).to_be_hidden()  # the fold stands
    expect(laptop.locator("#layout-status")).to_contain_text("Layout saved, with the changes")
    assert order(laptop) == moved


def test_a_change_made_while_a_merged_save_is_on_its_way_is_kept(open_page: OpenPage) -> None:
    """On the laptop (drawn before the desktop moved a card), a card is folded and, before the
    portal has answered, a second one: the first answer carries the merged layout, without the
    second fold. Showing it then would undo that fold on the page and in the save after it; the
    page keeps its own state instead, and the second save is put onto the merged layout."""
    laptop, moved = drawn_before_a_move(open_page)

    held: list[Route] = []

    def hold(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)  # the first save waits here

    laptop.route("**/layout", hold)
    laptop.locator("#widget-gamma .card-fold").click()
    for _ in range(100):  # the page sends it
        if held:
            break
        laptop.wait_for_timeout(50)
    assert len(held) == 1
    laptop.locator("#widget-alpha .card-fold").click()  # while the first is on its way
    held[0].continue_()
    saved(laptop, "Layout saved, with the changes made to it on another device or in another tab.")
    expect(laptop.locator("#layout-reload")).to_be_hidden()
    for _ in range(100):  # the second answer: the merged layout with both folds, shown
        if order(laptop) == moved:
            break
        laptop.wait_for_timeout(50)
    assert order(laptop) == moved
    expect(laptop.locator("#widget-gamma-body")).to_be_hidden()
    expect(laptop.locator("#widget-alpha-body")).to_be_hidden()  # the second fold stands
    fresh = open_page("/")
    assert order(fresh) == moved
    expect(fresh.locator("#widget-gamma-body")).to_be_hidden()
    expect(fresh.locator("#widget-alpha-body")).to_be_hidden()


def test_another_tab_shows_a_layout_saved_in_one_at_once(open_page: OpenPage) -> None:
    """Two tabs of one browser: a change saved in one is shown in the other at once, before
    anyone touches it, and said there; a change made there then is saved as it stands. After a
    reset the other tab asks for the team's default and shows it too."""
    first = from_the_default(open_page)
    second = first.context.new_page()
    second.goto("/")
    expect(second.locator("#layout-toggle")).to_be_enabled()
    first.locator("#widget-alpha .card-fold").click()
    saved(first)
    expect(second.locator("#layout-status")).to_have_text(
        "Your layout was changed in another tab; this page shows it now."
    )
    expect(second.locator("#widget-alpha-body")).to_be_hidden()  # the other tab's fold
    expect(second.locator("#widget-alpha .card-fold")).to_have_attribute("aria-expanded", "false")
    expect(second.locator("#layout-reload")).to_be_hidden()
    edit(first)
    first.locator("#widget-beta [data-action='up']").click()
    saved(first, "Beta moved to position 2 of 4. Layout saved.")
    moved = order(first)
    for _ in range(100):
        if order(second) == moved:
            break
        second.wait_for_timeout(50)
    assert order(second) == moved

    second.locator("#widget-gamma .card-fold").click()  # the second tab follows: a plain save
    saved(second, "Layout saved.")
    fresh = open_page("/")
    assert order(fresh) == moved
    expect(fresh.locator("#widget-alpha-body")).to_be_hidden()
    expect(fresh.locator("#widget-gamma-body")).to_be_hidden()

    second.locator("#layout-status").evaluate("(status) => { status.textContent = ''; }")
    first.locator("#layout-reset").click()
    expect(first.locator("#layout-status")).to_contain_text("Your team's default layout is back.")
    expect(second.locator("#layout-status")).to_have_text(  # the team's default, told and shown
        "Your layout was changed in another tab; this page shows it now."
    )
    expect(second.locator("#widget-alpha-body")).to_be_visible()
    assert order(second) == ["status", "alpha", "beta", "gamma"]
    expect(second.locator("#layout-reload")).to_be_hidden()


def test_a_tab_still_showing_another_persons_page_hears_nothing_of_this_layout(open_page: OpenPage) -> None:
    """One browser, two people: Camille's page stays open in a tab while Dominique logs in in
    another and folds a card. Camille's tab is not sent Dominique's layout, nor told of it."""
    camille = from_the_default(open_page)
    dominique = camille.context.new_page()
    dominique.goto("/auth/demo-user/dominique")
    expect(dominique.locator("#layout-toggle")).to_be_enabled()
    fold = dominique.locator("#widget-alpha .card-fold")
    if fold.get_attribute("aria-expanded") == "false":  # folded by an earlier run: unfold first
        fold.click()
        saved(dominique)
    fold.click()
    saved(dominique)
    # A tab of the same person hears it within milliseconds (the test above): give it far more.
    camille.wait_for_timeout(1000)
    expect(camille.locator("#layout-status")).to_have_text("")
    expect(camille.locator("#widget-alpha-body")).to_be_visible()
    assert order(camille) == ["status", "alpha", "beta", "gamma"]


def test_a_change_whose_answer_was_lost_is_not_taken_for_a_change_made_elsewhere(
    open_page: OpenPage, problems: PageProblems
) -> None:
    """A fold reaches the portal and is saved, but its answer never comes back (the network, a
    proxy). The next change must go through: the page's own fold is not "a change made on
    another device", and both folds are kept."""
    problems.allow_console(r"Failed to load resource")  # the lost answer
    page = from_the_default(open_page)

    def kept_then_lost(route: Route) -> None:
        route.fetch()  # the portal saves it...
        route.abort("connectionreset")  # ...and the page never hears back

    page.route("**/layout", kept_then_lost)
    page.locator("#widget-alpha .card-fold").click()
    expect(page.locator("#layout-status")).to_contain_text("The change could not be confirmed")
    page.unroute("**/layout")
    page.locator("#widget-beta .card-fold").click()
    saved(page)
    expect(page.locator("#layout-reload")).to_be_hidden()
    other = open_page("/")
    expect(other.locator("#widget-alpha-body")).to_be_hidden()
    expect(other.locator("#widget-beta-body")).to_be_hidden()


def test_a_saved_change_is_said_for_a_while_and_a_failure_until_the_next_change(
    open_page: OpenPage, problems: PageProblems
) -> None:
    """The page stays open all day: "Layout saved." leaves the heading after 20 s; a change the
    portal could not save stays said."""
    problems.allow_console(r"status of 503")
    page = from_the_default(open_page, before=lambda p: p.clock.install())
    status = page.locator("#layout-status")
    page.locator("#widget-alpha .card-fold").click()
    saved(page)
    page.clock.fast_forward(10_000)
    expect(status).to_have_text("Layout saved.")
    page.clock.fast_forward(11_000)
    expect(status).to_have_text("")

    def unavailable(route: Route) -> None:
        route.fulfill(status=503, json={"error": "Your layout cannot be saved right now."})

    page.route("**/layout", unavailable)
    page.locator("#widget-alpha .card-fold").click()
    expect(status).to_have_text("Your layout cannot be saved right now.")
    page.clock.fast_forward(60_000)
    expect(status).to_have_text("Your layout cannot be saved right now.")


def test_a_page_drawn_for_other_roles_is_drawn_anew_once(open_page: OpenPage, problems: PageProblems) -> None:
    """A card's poll answers 403 (the person lost a role since the page was drawn): the page asks
    for its layout, whose access key differs from the page's, and is drawn anew, with what the
    person may see now. Never twice for the same change: a page cannot loop."""
    problems.allow_console(r"status of 403|Status Error Code 403")  # the browser's and htmx's lines
    page = open_page("/")
    bar = page.locator("#layout-bar")
    own = bar.get_attribute("data-access")
    asked = page.evaluate("fetch('/layout', {headers: {Accept: 'application/json'}}).then((r) => r.json())")
    assert own and asked["access"] == own

    def refused(route: Route) -> None:  # as the portal answers a card its person may not see
        route.fulfill(
            status=403, content_type="text/html", body="<p>You do not have access to this widget.</p>"
        )

    drawn_for_other_roles = "document.getElementById('layout-bar').setAttribute('data-access', 'before')"
    page.evaluate(drawn_for_other_roles)
    page.route(re.compile(r"/widgets/status(\?|$)"), refused)
    with page.expect_navigation(timeout=20_000):  # at the status card's next poll (every 5 s)
        pass
    expect(bar).to_have_attribute("data-access", own)

    page.evaluate("window.__stayed = true")
    page.evaluate(drawn_for_other_roles)
    with page.expect_response(
        lambda r: r.url.endswith("/layout") and r.request.method == "GET", timeout=20_000
    ):
        pass  # the card refused again: the page asks again
    page.wait_for_timeout(500)
    assert page.evaluate("window.__stayed === true")  # the same change: not drawn anew again
