"""Everything can be done from the keyboard, and the focus is always visible."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from .helpers import ANIMATIONS_DONE, OpenPage, placed

# What has focus now, how it shows it, and whether anything (the sticky navbar) covers it.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  const x = Math.min(Math.max(box.left + box.width / 2, 0), innerWidth - 1);
  const y = Math.min(Math.max(box.top + Math.min(box.height / 2, 10), 0), innerHeight - 1);
  const top = document.elementFromPoint(x, y);
  return {
    key: el.id || el.getAttribute("href") || el.className,
    visible: el.matches(":focus-visible"),
    outline: style.outlineStyle !== "none" ? parseFloat(style.outlineWidth) : 0,
    inView: box.bottom > 0 && box.top < innerHeight,
    uncovered: !!top && (top === el || el.contains(top)),
  };
}"""
# Every element a keyboard user should be able to reach (a closed menu's items come once it opens).
FOCUSABLE = """() => [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
  .filter((el) => el.tabIndex >= 0 && !el.closest('[hidden]') && el.getClientRects().length)
  .filter((el) => !el.closest('details:not([open])') || el.matches('summary, summary *'))
  // A radio group is one stop: its checked button (the arrow keys move within it).
  .filter((el) => el.type !== 'radio' || el.checked || !document.querySelector(
    `input[type=radio][name="${el.name}"]:checked`))
  .map((el) => el.id || el.getAttribute('href') || el.className)"""


def _tab_through(page: Page) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    for _ in range(200):  # the incidents card alone has two links per alert
        page.keyboard.press("Tab")
        page.evaluate(ANIMATIONS_DONE)
        focused = page.evaluate(FOCUSED)
        if focused is None or (seen and focused["key"] == seen[0]["key"]):
            break
        seen.append(focused)
    return seen


def test_tab_reaches_everything_with_a_visible_focus(open_page: OpenPage) -> None:
    page = open_page("/")
    reached = _tab_through(page)
    expected = page.evaluate(FOCUSABLE)
    # The skip link is focusable but off-screen until focused, hence not in `expected`'s rects.
    assert {r["key"] for r in reached} >= set(expected)
    for focused in reached:
        assert focused["visible"], f"{focused['key']}: focus not shown as :focus-visible"
        assert focused["outline"] >= 2, f"{focused['key']}: no visible focus outline"
        assert focused["inView"] and focused["uncovered"], f"{focused['key']}: focused but hidden"


def test_the_skip_link_goes_to_the_content(open_page: OpenPage) -> None:
    page = open_page("/")
    page.keyboard.press("Tab")
    page.evaluate(ANIMATIONS_DONE)
    assert page.evaluate("() => document.activeElement.className") == "skip-link"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # type: ignore[index]
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"


def test_slash_focuses_the_filter_and_typing_narrows_the_tiles(open_page: OpenPage) -> None:
    page = open_page("/", language="fr")
    visible = page.locator(".tile-item:visible")
    assert visible.count() == 9
    page.keyboard.press("/")
    assert page.evaluate("() => document.activeElement.id") == "tile-filter"
    page.keyboard.type("securite")  # accents are optional: matches "sécurité"
    assert [t.strip() for t in visible.locator(".tool-tile__name").all_inner_texts()] == ["SonarQube"]
    page.keyboard.press("Escape")
    assert visible.count() == 9
    page.keyboard.type("gi lab")  # every word must match
    assert visible.count() == 1
    page.keyboard.press("Control+a")
    page.keyboard.type("nothing like this")
    assert visible.count() == 0
    assert page.locator("#tile-filter-empty").is_visible()
    # "/" typed in the field is text, not a shortcut.
    page.keyboard.press("Escape")
    page.keyboard.type("ci/cd")
    assert page.locator("#tile-filter").input_value() == "ci/cd"
    assert visible.count() == 1
    # Tab from the field goes on to the first matching tile.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.getAttribute('href')") == "https://gitlab.example.org/"


def test_the_language_switch_from_the_keyboard(open_page: OpenPage) -> None:
    page = open_page("/", language="en")
    page.locator(".lang-switch__option[hreflang=fr]").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.documentElement.lang === 'fr'")
    assert page.locator("#dashboard-title").inner_text().strip() == "Tableau de bord"


def test_the_user_menu_opens_and_closes_from_the_keyboard(open_page: OpenPage) -> None:
    page = open_page("/", language="en")
    page.focus("#user-menu > summary")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.getElementById('user-menu').open")
    reached = [step["key"] for step in _tab_through(page)]
    switch = [key for key in reached if str(key).startswith("/auth/demo-user/")]
    assert len(switch) == 2  # both demo users can be chosen without a mouse
    page.focus("#user-menu > summary")
    page.keyboard.press("Escape")
    assert not page.evaluate("() => document.getElementById('user-menu').open")


# The cards in the order they are seen: by the top of their place, then from left to right.
CARDS_AS_SEEN = """() => [...document.querySelectorAll('#widget-grid > .widget-card')]
  .filter((card) => card.getClientRects().length)
  .map((card) => [card.id, card.getBoundingClientRect()])
  .sort((a, b) => a[1].top - b[1].top || a[1].left - b[1].left)
  .map(([id]) => id)"""
CARD_OF_FOCUS = (
    "() => { const card = document.activeElement.closest('.widget-card'); return card && card.id; }"
)


def test_tab_goes_through_the_cards_in_the_order_they_are_seen(open_page: OpenPage) -> None:
    """Three columns at 1280 px: the tasks card sits beside the status card, at the top, and the
    incidents card under the status card. Tab went from the status card down to the incidents
    card, then back up the page to the tasks card (the layout's order, not the one on screen)."""
    page = open_page("/", width=1280)
    placed(page)
    seen = page.evaluate(CARDS_AS_SEEN)
    assert page.evaluate("() => document.getElementById('widget-grid').dataset.columns") == "3"
    page.locator("#tile-filter").focus()
    visited: list[str] = []
    for _ in range(200):
        page.keyboard.press("Tab")
        card = page.evaluate(CARD_OF_FOCUS)
        if card and card not in visited:
            visited.append(card)
        if len(visited) == len(seen):
            break
    assert visited == seen
