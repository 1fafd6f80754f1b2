"""The theme switch: system → light → dark → system, remembered, and never a flash of the wrong one."""

from __future__ import annotations

from playwright.sync_api import Page

from .helpers import OpenPage

LIGHT_BG = "rgb(238, 241, 248)"
DARK_BG = "rgb(6, 9, 19)"

# What the first frame shows, and every change of data-theme from the very start of the load.
WATCH_FIRST_FRAME = """
window.__themeChanges = [];
new MutationObserver((records) => {
  for (const r of records) if (r.attributeName === "data-theme") window.__themeChanges.push(r.oldValue);
}).observe(document, {
  attributes: true, attributeOldValue: true, subtree: true, attributeFilter: ["data-theme"],
});
requestAnimationFrame(() => {
  const root = document.documentElement;
  window.__firstFrame = {
    theme: root.getAttribute("data-theme"), background: getComputedStyle(root).backgroundColor,
  };
});
"""


def _background(page: Page) -> str:
    return str(page.evaluate("() => getComputedStyle(document.documentElement).backgroundColor"))


def _theme(page: Page) -> str | None:
    return page.evaluate("() => document.documentElement.getAttribute('data-theme')")  # type: ignore[no-any-return]


def _first_frame(page: Page) -> dict[str, str | None]:
    page.wait_for_function("() => window.__firstFrame")
    return page.evaluate("() => window.__firstFrame")  # type: ignore[no-any-return]


def test_the_system_theme_is_followed_until_one_is_chosen(open_page: OpenPage) -> None:
    light = open_page("/", scheme="light")
    assert _theme(light) is None
    assert _background(light) == LIGHT_BG
    dark = open_page("/", scheme="dark")
    assert _theme(dark) is None
    assert _background(dark) == DARK_BG
    assert dark.locator("#theme-switch").get_attribute("aria-label") == "Theme: follows the system"


def test_the_switch_cycles_and_the_choice_survives_a_reload_without_a_flash(open_page: OpenPage) -> None:
    page = open_page("/", scheme="light", before=lambda p: p.add_init_script(WATCH_FIRST_FRAME))
    switch = page.locator("#theme-switch")

    switch.click()
    assert _theme(page) == "light"
    assert switch.get_attribute("aria-label") == "Theme: light"
    switch.click()
    assert _theme(page) == "dark"
    assert _background(page) == DARK_BG
    assert switch.get_attribute("aria-label") == "Theme: dark"
    assert {"name": "portal_theme", "value": "dark"}.items() <= next(
        c for c in page.context.cookies() if c["name"] == "portal_theme"
    ).items()

    # The system says light; the reload must paint dark from its very first frame.
    page.reload()
    assert _first_frame(page) == {"theme": "dark", "background": DARK_BG}
    assert page.evaluate("() => window.__themeChanges") == []
    assert switch.get_attribute("data-theme-current") == "dark"

    switch.click()  # back to the system's choice
    assert _theme(page) is None
    page.reload()
    assert _first_frame(page) == {"theme": None, "background": LIGHT_BG}
    assert page.evaluate("() => window.__themeChanges") == []


def test_the_switch_works_from_the_keyboard(open_page: OpenPage) -> None:
    page = open_page("/", scheme="dark")
    switch = page.locator("#theme-switch")
    switch.focus()
    page.keyboard.press("Enter")
    assert _theme(page) == "light"
    page.keyboard.press("Space")
    assert _theme(page) == "dark"
    assert page.evaluate("() => document.activeElement.id") == "theme-switch"


def test_without_script_the_switch_is_a_link_that_remembers(open_page: OpenPage) -> None:
    page = open_page("/", scheme="light", java_script_enabled=False, settle=False)
    page.locator("#theme-switch").click()
    page.wait_for_load_state()
    assert _theme(page) == "light"
    page.locator("#theme-switch").click()
    page.wait_for_load_state()
    assert _theme(page) == "dark"
