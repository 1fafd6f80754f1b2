"""`make screenshots`: the demo in headless Chromium, written to screenshots/ (linked from the README).

    dashboard-{en,fr}-{light,dark}.png   the desktop dashboard, full page
    phone-fr-light.png, phone-en-dark.png a 390 px wide phone, full page
    skeleton-en-light.png                 the cards before their first answer
    edit-{en,fr}-{light,dark}.png         "Edit layout": the controls of one's own layout
    {metrics,incidents}-{en,fr}-{light,dark}.png   one card each, as the dashboard shows it
    tasks-{en,fr}-{light,dark}.png, deadlines-{en,fr}-{light,dark}.png   the Taiga cards alone
    tasks-menu-en-light.png, deadlines-feed-fr-dark.png                 a status menu, the feed panel
    pipelines-{en-light,fr-dark}-{projects,mine}.png   the pipelines card, each tab (chosen from the keyboard)
    pipelines-menu-en-light.png          the user menu with the GitLab avatar and profile link
    error-404-{en-light,fr-dark}.png      an error page
    page-{390,768,1280,1440,1920}-{en,fr}-{light,dark}.png   the first screen at each width (above the fold)
    page-390-{en-light,fr-dark}-menu.png  the user menu open on a phone
    page-offline-en-light.png             the banner when the portal itself cannot be reached
    outage-{en-light,fr-dark}.png         every upstream failing: each card its last data, stale, and why

Starts its own demo (simulators and gunicorn) on a free loopback port; the browser is Debian's
Chromium driven by Playwright (never `playwright install`).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import requests
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.browser import launch_chromium
from demo.running import ROOT, free_port, running_demo

OUT = ROOT / "screenshots"
PAGE_SIZES = ((390, 844), (768, 1024), (1280, 720), (1440, 900), (1920, 1080))
SHOTS = [
    # name, path, language, theme, width, height
    ("dashboard-en-light", "/", "en", "light", 1440, 1000),
    ("dashboard-en-dark", "/", "en", "dark", 1440, 1000),
    ("dashboard-fr-light", "/", "fr", "light", 1440, 1000),
    ("dashboard-fr-dark", "/", "fr", "dark", 1440, 1000),
    ("phone-fr-light", "/", "fr", "light", 390, 844),
    ("phone-en-dark", "/", "en", "dark", 390, 844),
    ("error-404-en-light", "/no-such-page", "en", "light", 1440, 900),
    ("error-404-fr-dark", "/no-such-page", "fr", "dark", 1440, 900),
]
SETTLED = "() => !document.querySelector('.widget-content.is-loading, .htmx-request, .htmx-settling')"
# The first screen at every width people use, in both languages and both themes
# (name, language, theme, width, height).
FIRST_SCREENS = [
    (f"page-{w}-{language}-{theme}", language, theme, w, h)
    for w, h in PAGE_SIZES
    for language in ("en", "fr")
    for theme in ("light", "dark")
]
# On a phone, the user menu open too (these two).
MENU_SHOTS = ("page-390-en-light", "page-390-fr-dark")


def _settle(page: Page) -> None:
    """Wait until every card has its data and the page has settled."""
    page.wait_for_function(SETTLED, timeout=20_000)
    page.wait_for_timeout(600)


def _shoot(
    browser: Browser, base: str, name: str, path: str, language: str, theme: str, size: tuple[int, int]
) -> None:
    width, height = size
    context = browser.new_context(
        base_url=base,
        viewport={"width": width, "height": height},
        device_scale_factor=1 if width > 800 else 2,
        locale=language,
        color_scheme=theme,  # type: ignore[arg-type]  # the system's preference: the default path
    )
    page = context.new_page()
    page.goto(path)
    _settle(page)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"screenshots/{name}.png")
    context.close()


def _skeleton(browser: Browser, base: str) -> None:
    """The loading state: every widget request is cancelled, so the cards keep their skeletons
    (the demo's cache is still empty: nothing comes with the page)."""
    context = browser.new_context(base_url=base, viewport={"width": 1440, "height": 900}, locale="en")
    page = context.new_page()
    page.add_init_script("document.addEventListener('htmx:beforeRequest', (e) => e.preventDefault())")
    page.goto("/")
    page.wait_for_selector(".widget-skeleton")
    page.wait_for_timeout(400)
    page.screenshot(path=str(OUT / "skeleton-en-light.png"))
    print("screenshots/skeleton-en-light.png")
    context.close()


def _edit_mode(browser: Browser, base: str, language: str, theme: str) -> None:
    """The edit mode with a tool pinned (the demo's database is its own, thrown away after)."""
    context = browser.new_context(
        base_url=base, viewport={"width": 1440, "height": 1000}, locale=language, color_scheme=theme
    )
    page = context.new_page()
    page.goto("/")
    _settle(page)
    page.locator("#layout-toggle").click()
    pin = page.locator(".tile-item[data-tile='grafana'] .tile-pin")
    if pin.get_attribute("aria-pressed") == "true":  # pinned by the previous shot: pinned again
        pin.click()
        page.wait_for_function("() => document.querySelector('#layout-status').textContent.trim() !== ''")
        page.evaluate("() => { document.querySelector('#layout-status').textContent = ''; }")
    pin.click()
    page.wait_for_function("() => document.querySelector('#layout-status').textContent.trim() !== ''")
    page.mouse.move(0, 0)  # no hover
    page.wait_for_timeout(400)
    name = f"edit-{language}-{theme}"
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"screenshots/{name}.png")
    context.close()


def _card(page: Page, selector: str, name: str) -> None:
    """One card, cut out of the full page (where the sticky navbar stays at the top)."""
    box = page.locator(selector).evaluate(
        "(el) => { const r = el.getBoundingClientRect();"
        " return {x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height}; }"
    )
    page.screenshot(path=str(OUT / f"{name}.png"), clip=box, full_page=True)
    print(f"screenshots/{name}.png")


def _pipelines(browser: Browser, base: str, language: str, theme: str) -> None:
    """The pipelines card's two tabs (the second chosen with the arrow key), and the user menu."""
    context = browser.new_context(
        base_url=base,
        viewport={"width": 1440, "height": 1000},
        locale=language,
        color_scheme=theme,  # type: ignore[arg-type]
    )
    page = context.new_page()
    page.goto("/")
    _settle(page)
    page.wait_for_selector("#pipelines-tab-projects")
    _card(page, "#widget-pipelines", f"pipelines-{language}-{theme}-projects")
    page.focus("#pipelines-tab-projects")
    page.keyboard.press("ArrowRight")
    _card(page, "#widget-pipelines", f"pipelines-{language}-{theme}-mine")
    if (language, theme) == ("en", "light"):
        page.evaluate("() => window.scrollTo(0, 0)")
        page.click("#user-menu summary")
        page.wait_for_selector(".user-menu__gitlab")
        page.wait_for_timeout(300)
        page.screenshot(
            path=str(OUT / "pipelines-menu-en-light.png"),
            clip={"x": 900, "y": 0, "width": 540, "height": 520},
        )
        print("screenshots/pipelines-menu-en-light.png")
    context.close()


CARDS = ("metrics", "incidents")


def _cards(browser: Browser, base: str, language: str, theme: str) -> None:
    """Each card alone, in a window tall enough that the sticky navbar covers none of it."""
    context = browser.new_context(
        base_url=base,
        viewport={"width": 1440, "height": 2600},
        locale=language,
        color_scheme=theme,  # type: ignore[arg-type]
    )
    page = context.new_page()
    page.goto("/")
    _settle(page)
    for slug in CARDS:
        name = f"{slug}-{language}-{theme}"
        page.locator(f"#widget-{slug}").screenshot(path=str(OUT / f"{name}.png"))
        print(f"screenshots/{name}.png")
    context.close()


def _taiga_cards(browser: Browser, base: str) -> None:
    """The tasks and deadlines cards alone, both languages and themes; a status menu open; the feed panel."""
    for language in ("en", "fr"):
        for theme in ("light", "dark"):
            context = browser.new_context(
                base_url=base,
                viewport={"width": 1440, "height": 2000},
                locale=language,
                color_scheme=theme,  # type: ignore[arg-type]
            )
            page = context.new_page()
            page.goto("/")
            _settle(page)
            page.mouse.move(0, 0)
            for slug in ("tasks", "deadlines"):
                page.locator(f"#widget-{slug}").screenshot(path=str(OUT / f"{slug}-{language}-{theme}.png"))
                print(f"screenshots/{slug}-{language}-{theme}.png")
            if (language, theme) == ("en", "light"):
                page.locator("#widget-tasks details.status-menu summary").nth(1).click()
                page.wait_for_timeout(300)
                page.locator("#widget-tasks").screenshot(path=str(OUT / "tasks-menu-en-light.png"))
                print("screenshots/tasks-menu-en-light.png")
            if (language, theme) == ("fr", "dark"):
                page.locator("#widget-deadlines .feed-panel summary").click()
                page.wait_for_selector("#deadlines-feed")
                create = page.locator("#deadlines-feed button.is-primary")
                if create.count():  # the demo's own database: a feed address made for the shot
                    create.click()
                page.wait_for_selector("#deadlines-feed-url")
                page.mouse.move(0, 0)
                page.wait_for_timeout(300)
                page.locator("#widget-deadlines").screenshot(path=str(OUT / "deadlines-feed-fr-dark.png"))
                print("screenshots/deadlines-feed-fr-dark.png")
            context.close()


def _context(
    browser: Browser, base: str, language: str, theme: str, width: int, height: int
) -> BrowserContext:
    return browser.new_context(
        base_url=base,
        viewport={"width": width, "height": height},
        device_scale_factor=1 if width > 800 else 2,
        locale=language,
        color_scheme=theme,  # type: ignore[arg-type]
    )


def _first_screens(browser: Browser, base: str, wanted: tuple[str, ...]) -> None:
    """The first screen at each size; on a phone, the user menu open too."""
    for name, language, theme, width, height in FIRST_SCREENS:
        if wanted and not name.startswith(wanted):
            continue
        context = _context(browser, base, language, theme, width, height)
        page = context.new_page()
        page.goto("/")
        _settle(page)
        page.mouse.move(0, 0)
        page.screenshot(path=str(OUT / f"{name}.png"))
        print(f"screenshots/{name}.png")
        if name in MENU_SHOTS:
            page.click("#user-menu summary")
            page.wait_for_timeout(300)
            page.screenshot(path=str(OUT / f"{name}-menu.png"))
            print(f"screenshots/{name}-menu.png")
        context.close()


def _offline(browser: Browser, base: str) -> None:
    """The portal itself unreachable: every request to it fails, and the banner says so at the top."""
    context = _context(browser, base, "en", "light", 1280, 720)
    page = context.new_page()
    page.clock.install()
    page.goto("/")
    page.wait_for_function(SETTLED, timeout=20_000)
    page.route("**/widgets/**", lambda route: route.abort())
    page.route("**/healthz", lambda route: route.abort())
    for _ in range(120):  # the page's clock on, until a card's poll fails
        page.clock.run_for(1000)
        if page.locator("#portal-offline").is_visible():
            break
    page.clock.run_for(2000)  # one retry failed: the next in 4 s
    page.mouse.move(0, 0)
    page.screenshot(path=str(OUT / "page-offline-en-light.png"))
    print("screenshots/page-offline-en-light.png")
    context.close()


# What each upstream does in the outage shots: failures that come at once (no timeout to wait
# for), each a different one, as the cards word them.
OUTAGE = {
    "DEMO_KUMA_PORT": {"mode": "error500"},
    "DEMO_GITLAB_PORT": {"mode": "unauthorized"},
    "DEMO_PROMETHEUS_PORT": {"mode": "garbage"},
    "DEMO_ALERTMANAGER_PORT": {"mode": "forbidden"},
    "DEMO_TAIGA_PORT": {"mode": "error500"},
}


def _longest_ttl() -> int:
    """Seconds after which every card of the demo (the example configuration) refreshes its data."""
    widgets = yaml.safe_load((ROOT / "portal.example.yaml").read_text(encoding="utf-8"))["widgets"]
    return max(int(section.get("ttl", 30)) for section in widgets.values())


def _outage(browser: Browser, base: str, ports: dict[str, int]) -> None:
    """Every upstream failing once the cards had data: the dashboard as the team then sees it."""
    context = _context(browser, base, "en", "light", 1440, 1000)
    page = context.new_page()
    page.goto("/")  # the cards' data, in the cache before the outage
    _settle(page)
    context.close()
    for variable, fault in OUTAGE.items():
        requests.post(
            f"http://127.0.0.1:{ports[variable]}/_sim/fault", json=fault, timeout=5
        ).raise_for_status()
    try:
        time.sleep(_longest_ttl() + 1)  # every card's data is past its TTL: the next poll refreshes it
        for language, theme in (("en", "light"), ("fr", "dark")):
            context = _context(browser, base, language, theme, 1440, 1000)
            page = context.new_page()
            page.goto("/")
            _settle(page)
            page.mouse.move(0, 0)
            name = f"outage-{language}-{theme}"
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
            print(f"screenshots/{name}.png")
            context.close()
    finally:
        for port in ports.values():
            requests.post(f"http://127.0.0.1:{port}/_sim/reset", timeout=5)


def main() -> int:
    """Every screenshot, or those whose names start with the arguments (`edit`, `dashboard-fr`)."""
    wanted = tuple(sys.argv[1:])
    OUT.mkdir(exist_ok=True)
    # The browser on the demo's clock (portal.example.yaml: Europe/Paris), as its team's would
    # be: a machine on UTC would show the note a colleague abroad reads on every screenshot.
    os.environ["TZ"] = "Europe/Paris"
    ports = {variable: free_port() for variable in OUTAGE}
    with running_demo(ports=ports) as base, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        if not wanted or "skeleton-en-light".startswith(wanted):
            _skeleton(browser, base)  # first: data fresh in the cache would come with the page
        for name, path, language, theme, width, height in SHOTS:
            if not wanted or name.startswith(wanted):
                _shoot(browser, base, name, path, language, theme, (width, height))
        if not wanted or any(w.startswith("page") for w in wanted):
            _first_screens(browser, base, tuple(w for w in wanted if w.startswith("page-")))
        if not wanted or "page-offline-en-light".startswith(wanted):
            _offline(browser, base)
        for language in ("en", "fr"):
            for theme in ("light", "dark"):
                if not wanted or f"edit-{language}-{theme}".startswith(wanted):
                    _edit_mode(browser, base, language, theme)
        for language in ("en", "fr"):
            for theme in ("light", "dark"):
                if not wanted or any(f"{c}-{language}-{theme}".startswith(wanted) for c in CARDS):
                    _cards(browser, base, language, theme)
        if not wanted or any(w in ("taiga", "tasks", "deadlines") for w in wanted):
            _taiga_cards(browser, base)
        for language, theme in (("en", "light"), ("fr", "dark")):
            if not wanted or f"pipelines-{language}-{theme}".startswith(wanted):
                _pipelines(browser, base, language, theme)
        if not wanted or any(w.startswith("outage") for w in wanted):
            _outage(browser, base, ports)  # last: it makes every upstream fail
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
