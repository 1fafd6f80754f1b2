"""Accessibility: axe-core finds nothing, colour is never the only signal, zoom and reduced
motion are respected, and the page reflows at 320 px."""

from __future__ import annotations

import io
from collections.abc import Callable
from itertools import combinations, pairwise
from typing import Any

import pytest
from PIL import Image, ImageChops
from playwright.sync_api import Page, Route, expect

from portal import create_app
from simulators.uptime_kuma import KumaWorld

from ..conftest import SECRET, example_config
from ..support.apps import add_failing_routes
from ..support.processes import free_port
from .conftest import Portal
from .helpers import SETTLED, OpenPage, PageProblems, describe_violations, run_axe

# Every page a person can land on. The single sign-on pages (Keycloak unreachable at login,
# signed out) come from a portal in oidc mode whose Keycloak is down, like the 403 and 500.
PAGES = [
    pytest.param("/_rendered/login-problem", "light", 1280, id="login-problem-light"),
    pytest.param("/_rendered/login-problem", "dark", 390, id="login-problem-phone-dark"),
    pytest.param("/_rendered/logged-out", "dark", 1280, id="logged-out-dark"),
    pytest.param("/", "light", 1280, id="dashboard-light"),
    pytest.param("/", "dark", 1280, id="dashboard-dark"),
    pytest.param("/", "dark", 390, id="dashboard-phone"),
    pytest.param("/no-such-page", "light", 1280, id="404-light"),
    pytest.param("/no-such-page", "dark", 1280, id="404-dark"),
    pytest.param("/_rendered/403", "light", 1280, id="403-light"),
    pytest.param("/_rendered/500", "dark", 1280, id="500-dark"),
]


WITHOUT_DECORATION = """() => {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(`html { background-image: none !important; }
    body::before, .portal-navbar::after, .widget-card__header::after,
    .widget-card::before, .error-card::before, .widget-card::after, .error-card::after {
      content: none !important;
    }`);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}"""
# Text on a gradient, and the contrast it needs (large bold text: 3, anything else: 4.5).
GRADIENTS = {
    ".portal-brand__name": 3.0,  # gradient text (background-clip) on the navbar
    ".is-active": 4.5,  # the current language
    ".error-card__action": 4.5,
    ".user-chip__avatar": 4.5,
}
# WCAG contrast of an element's text against each colour stop of its gradient; for gradient
# text, of each stop against the page's background colour.
GRADIENT_CONTRAST = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return [];
  const rgb = (text) => (text.match(/rgba?\\([^)]*\\)/g) || []).map((c) => c.match(/[\\d.]+/g).map(Number));
  const luminance = ([r, g, b]) => [r, g, b].map((v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  }).reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const style = getComputedStyle(el);
  const stops = rgb(style.backgroundImage);
  if (style.backgroundClip === "text") {
    const page = rgb(getComputedStyle(document.documentElement).backgroundColor)[0];
    return stops.map((stop) => ratio(stop, page));
  }
  const text = rgb(style.color)[0];
  return stops.map((stop) => ratio(text, stop));
}"""


@pytest.fixture(scope="module")
def rendered_errors(portal: Portal) -> Callable[[str, str], tuple[bytes, dict[str, str]]]:
    """A 403 or a 500 page as the portal renders them (made to happen in an app built here).

    The browser gets them on the real portal's origin, so their styles and scripts load
    from it and its Content-Security-Policy applies.
    """
    config = example_config()
    config["auth"] = {"mode": "demo"}
    config["upstreams"]["uptime_kuma"]["url"] = portal.url  # never called
    app = add_failing_routes(
        create_app({"PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}}), "/_rendered"
    )
    client = app.test_client()
    # The example configuration as shipped: oidc, here with a Keycloak nobody answers for.
    sso = example_config()
    sso["auth"]["oidc"].update(server_url=f"http://127.0.0.1:{free_port()}/", timeout=1)
    sso_client = create_app(
        {"PORTAL": sso, "ENV": {"PORTAL_SECRET_KEY": SECRET, "PORTAL_OIDC_CLIENT_SECRET": "x"}}
    ).test_client()
    sso_pages = {"login-problem": ("/auth/login?next=/", 503), "logged-out": ("/auth/logged-out", 200)}

    def render(page: str, language: str) -> tuple[bytes, dict[str, str]]:
        headers = {"Accept-Language": language}
        if page in sso_pages:
            path, code = sso_pages[page]
            response = sso_client.get(path, headers=headers)
        else:
            code = int(page)
            response = client.get(f"/_rendered/{code}", headers=headers)
        assert response.status_code == code, (page, response.status_code)
        return response.get_data(), dict(response.headers)

    return render


@pytest.fixture
def serve_rendered_errors(
    rendered_errors: Callable[[str, str], tuple[bytes, dict[str, str]]], problems: PageProblems
) -> Callable[[Page], None]:
    problems.allow_console(r"status of (403|404|500|503)")

    def install(page: Page) -> None:
        def fulfil(route: Route) -> None:
            name = route.request.url.rsplit("/", 1)[1]
            body, headers = rendered_errors(name, "en")
            code = int(name) if name.isdigit() else (503 if name == "login-problem" else 200)
            route.fulfill(status=code, body=body, headers=headers)

        page.route("**/_rendered/*", fulfil)

    return install


@pytest.mark.parametrize(("path", "scheme", "width"), PAGES)
def test_axe_finds_no_violation(
    open_page: OpenPage, serve_rendered_errors: Callable[[Page], None], path: str, scheme: str, width: int
) -> None:
    page = open_page(path, scheme=scheme, width=width, before=serve_rendered_errors)
    result = run_axe(page)
    assert result["violations"] == [], describe_violations(result["violations"])
    # axe cannot see through decorations, so it cannot decide the contrast of what is over them:
    # the backdrop (auroras, grid: a fixed pseudo-element behind the page), the navbar's strip of
    # light, and the cards' top glow line, edge light and header hairline (pseudo-elements along
    # edges, behind no text). Without them, everything is decided, except text on a
    # gradient, checked here against every colour of its gradient.
    page.evaluate(WITHOUT_DECORATION)
    contrast = run_axe(page, {"runOnly": ["color-contrast"]})
    assert contrast["violations"] == [], describe_violations(contrast["violations"])
    undecided = sorted({n["target"][0] for i in contrast["incomplete"] for n in i["nodes"]})
    unexplained = page.evaluate(
        "([targets, known]) => targets.filter("
        "(t) => !known.some((k) => document.querySelector(t).matches(k)))",
        [undecided, list(GRADIENTS)],
    )
    assert unexplained == [], f"contrast undecided on something that is not a known gradient: {unexplained}"
    for selector, minimum in GRADIENTS.items():
        for ratio in page.evaluate(GRADIENT_CONTRAST, selector):
            assert ratio >= minimum, f"{selector}: contrast {ratio:.2f} on part of its gradient"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_violation_in_a_days_details_the_account_menu_or_a_filtered_card(
    open_page: OpenPage, scheme: str
) -> None:
    page = open_page("/", scheme=scheme, language="fr")
    page.locator("#widget-deadlines .day__open").first.click()
    expect(page.locator(".day-details:popover-open")).to_be_visible()
    result = run_axe(page)
    assert result["violations"] == [], describe_violations(result["violations"])
    page.keyboard.press("Escape")
    page.click("#user-menu summary")
    expect(page.locator("#notify-toggle")).to_be_visible()
    result = run_axe(page)
    assert result["violations"] == [], describe_violations(result["violations"])
    page.click("#user-menu summary")
    # The incidents card with a severity filter on, which it says (kept per person: put back).
    page.locator("#incidents-severity-info").click()
    expect(page.locator(".incidents-filtered")).to_be_visible(timeout=15_000)
    result = run_axe(page)
    page.locator(".incidents-filtered__all").click()
    expect(page.locator(".incidents-filtered")).to_have_count(0, timeout=15_000)
    assert result["violations"] == [], describe_violations(result["violations"])


# The page's headings in order (level, text), those of closed details and popovers included.
HEADINGS = """() => [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")]
  .map((h) => [Number(h.tagName[1]), h.textContent.trim().replace(/\\s+/g, " ").slice(0, 50)])"""


def test_the_headings_make_one_outline_without_a_skipped_level(open_page: OpenPage) -> None:
    """A screen reader's list of headings: one h1, the sections (Tools, Dashboard), the cards
    under the dashboard, their parts under each card. The page had two h1 and no outline."""
    headings = open_page("/").evaluate(HEADINGS)
    assert [level for level, _ in headings].count(1) == 1 and headings[0][0] == 1, headings
    for (before, name_before), (level, name) in pairwise(headings):
        assert level <= before + 1, f"{name!r} (h{level}) after {name_before!r} (h{before})"
    cards = [name for level, name in headings if level == 3]
    assert {"Service status", "My tasks", "Deadlines", "Quick metrics", "Pipelines"} <= set(cards), cards


def test_zoom_is_not_blocked_and_the_page_reflows_at_320px(open_page: OpenPage) -> None:
    page = open_page("/", width=320, height=640)
    viewport = page.locator('meta[name="viewport"]').get_attribute("content") or ""
    assert "user-scalable" not in viewport and "maximum-scale" not in viewport
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow == 0, "the page scrolls sideways at 320 px (400 % zoom of a 1280 px screen)"


# What sticks out of its card at this width: the card clips it (a time, a badge cut in half), so
# the page itself never scrolls sideways and only the eye can tell.
OUTSIDE_ITS_CARD = """() => {
  const out = [];
  for (const card of document.querySelectorAll('.widget-card')) {
    const box = card.getBoundingClientRect();
    for (const el of card.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (!r.width || !r.height || el.closest('.is-sr-only')) continue;
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5) {
        const what = card.id + ' ' + el.tagName.toLowerCase() + '.' + [...el.classList].join('.');
        const span = (b) => Math.round(b.left) + '..' + Math.round(b.right);
        out.push(what + ' ' + span(r) + ' in ' + span(box));
      }
    }
  }
  return out;
}"""


@pytest.mark.parametrize("width", [320, 360, 390])
@pytest.mark.parametrize("language", ["en", "fr"])
def test_at_phone_widths_nothing_sticks_out_of_its_card(
    open_page: OpenPage, language: str, width: int
) -> None:
    page = open_page("/", language=language, width=width, height=640)
    assert page.evaluate(OUTSIDE_ITS_CARD) == []
    page.locator("#pipelines-tab-mine").click()  # the other tab's panel
    expect(page.locator("#pipelines-panel-mine")).to_be_visible()
    assert page.evaluate(OUTSIDE_ITS_CARD) == []
    # A task's title keeps the row's width (its status goes under it), not a column a word wide.
    shares = page.evaluate(
        "() => [...document.querySelectorAll('#widget-tasks .task-row')].map((row) =>"
        " row.querySelector('.task-row__main').offsetWidth / row.offsetWidth)"
    )
    assert shares and min(shares) > 0.8, shares
    page.locator("#widget-tasks .status-tag").first.click()  # its menu opens within the card
    expect(page.locator("#widget-tasks .status-menu[open] .status-menu__list")).to_be_visible()
    assert page.evaluate(OUTSIDE_ITS_CARD) == []


def test_nothing_loops_and_reduced_motion_stops_the_animations(open_page: OpenPage) -> None:
    running = (
        "() => document.getAnimations().filter((a) => a.playState === 'running').map((a) => a.animationName)"
    )
    looping = (  # a card's refresh spinner aside: it turns while a poll is on its way, and stops
        "() => document.getAnimations().filter((a) => a.playState === 'running' && a.animationName !== 'spin'"
        " && a.effect.getComputedTiming().iterations === Infinity).map((a) => a.animationName)"
    )
    moving = open_page("/")
    assert moving.locator(".tile-dot.is-down").count() > 0
    assert moving.evaluate(looping) == []  # a page left open all day: no down dot pulsing for ever
    still = open_page("/", reduced_motion="reduce")
    assert still.evaluate(running) == []
    durations = still.evaluate(
        "() => ['.tool-tile', '.widget-card', '.theme-switch', '.skip-link']"
        ".map((s) => getComputedStyle(document.querySelector(s)).transitionDuration)"
    )
    assert set(durations) == {"0s"}


# --- colour is never the only signal -------------------------------------------------------------

# Only the marks stay painted, on a transparent page: their alpha channel is their shape.
SILHOUETTES = """(selector) => {
  for (const el of [document.documentElement, document.body]) {
    el.style.background = "transparent";
    el.style.backdropFilter = "none";
  }
  document.body.style.visibility = "hidden";
  for (const el of document.querySelectorAll(selector)) {
    el.style.visibility = "visible";
    el.style.animation = "none";
  }
  return [...document.querySelectorAll(selector)].map((el) => {
    const box = el.getBoundingClientRect();
    const x = box.left + scrollX + box.width / 2;
    return { key: el.className, x, y: box.top + scrollY + box.height / 2 };
  });
}"""


ONLY_THE_FIRST = """(selectors) => selectors.forEach((selector) =>
  document.querySelectorAll(selector).forEach((el, index) => { if (index) el.remove(); }))"""


def _shapes(page: Page, selector: str, size: int = 40) -> dict[str, Image.Image]:
    marks: list[dict[str, Any]] = page.evaluate(SILHOUETTES, selector)
    # Transitions at their end: a dot's new state eases in (0.4 s) after the poll that set it.
    drawn = page.screenshot(omit_background=True, full_page=True, animations="disabled")
    shot = Image.open(io.BytesIO(drawn)).getchannel("A")
    scale = shot.width / page.viewport_size["width"]  # type: ignore[index]
    found = {}
    for mark in marks:
        left, top = (mark["x"] - size / 2) * scale, (mark["y"] - size / 2) * scale
        found[mark["key"]] = shot.crop((round(left), round(top), round(left) + size, round(top) + size))
    return found


def _assert_distinct_shapes(shapes: dict[str, Image.Image]) -> None:
    for (a, shape_a), (b, shape_b) in combinations(shapes.items(), 2):
        difference = ImageChops.difference(shape_a, shape_b).point(lambda v: 255 if v > 64 else 0)
        changed = sum(1 for v in difference.getdata() if v)
        assert changed >= 30, f"{a} and {b} differ only by colour ({changed} pixels of shape differ)"


@pytest.fixture
def every_state(world: KumaWorld) -> KumaWorld:
    """Tiles whose monitors are up, degraded, down, in maintenance and unknown."""
    world.monitors[3].behaviour = "pending"  # Harbor
    world.monitors[6].behaviour = "silent"  # HedgeDoc: no heartbeat yet
    return world


@pytest.mark.parametrize("forced_colors", ["none", "active"])
def test_status_dots_differ_in_shape(open_page: OpenPage, every_state: KumaWorld, forced_colors: str) -> None:
    """Also in forced colours (Windows' contrast themes), which take away the backgrounds and
    shadows the dots are drawn with: every tool's state was gone from its tile."""
    page = open_page("/", width=1280, forced_colors=forced_colors)
    page.wait_for_function(
        "() => document.querySelectorAll('.tile-dot.is-degraded, .tile-dot.is-unknown').length === 2"
    )
    dots = {
        state: f"#tile-dot-{tile}"
        for state, tile in [
            ("up", "gitlab"),
            ("degraded", "harbor"),
            ("down", "sonarqube"),
            ("maintenance", "mattermost"),
            ("unknown", "hedgedoc"),
        ]
    }
    for state, selector in dots.items():
        assert page.locator(selector).get_attribute("class") == f"tile-dot is-{state}"
        assert page.locator(selector).get_attribute("aria-label")  # and in words for screen readers
    shapes = _shapes(page, ", ".join(dots.values()))
    # Closed before `every_state` puts the monitors back: the dots the next poll would swap in
    # take their attributes from the old ones first (htmx's settling), the test's style with them,
    # which the CSP refuses (a console error, and a report that failed the session's portal).
    page.close()
    assert len(shapes) == 5
    _assert_distinct_shapes(shapes)


def test_status_badges_on_a_phone_differ_in_shape(open_page: OpenPage, every_state: KumaWorld) -> None:
    """On a phone the badge's word is for screen readers only: its icon must tell the state."""
    page = open_page("/", width=390)
    page.wait_for_function("() => document.querySelector('.status-badge.is-degraded')")
    marks = [
        ".status-badge.is-up",
        ".status-badge.is-degraded",
        ".status-badge.is-down",
        ".status-badge.is-maintenance",
        ".status-badge.is-unknown",
    ]
    for selector in marks:
        word = page.locator(f"{selector} span").first
        assert word.text_content()  # the word is there for screen readers ...
        assert word.bounding_box()["width"] <= 1  # type: ignore[index]  # ... but not shown
    page.evaluate(ONLY_THE_FIRST, marks)
    _assert_distinct_shapes(_shapes(page, ", ".join(marks)))


def test_incident_severity_is_said_in_words_and_icons(open_page: OpenPage) -> None:
    page = open_page("/")
    notes = page.locator(".incident-note")
    kinds = [k.strip() for k in notes.locator(".incident-note__kind").all_inner_texts()]
    # small capitals by CSS, the words as written (screen readers read what innerText reads);
    # two status pages: each note names its own
    assert [k.split(" · ")[0] for k in kinds] == ["Major incident", "Maintenance"]
    assert all(" · " in k for k in kinds)
    icons = notes.locator(".incident-note__icon use").evaluate_all(
        "(uses) => uses.map((u) => u.getAttribute('href').split('#')[1])"
    )
    assert icons == ["octagon", "wrench"]


# Every control a person can tap, and the controls that miss a 44 × 44 px tap (WCAG 2.5.5)
# around their centre: each of 25 points across the square must land on the control (a
# descendant, its hit layer, or the label of a check box or radio). A control larger than the
# square passes with the square slid within it (a tool tile's corner holds its pin). Not
# measured: what is not shown, what is off the screen (the skip link until focused), and a link
# in running text (WCAG's "inline" exception: "… suivi dans le canal incidents.").
SMALL_TARGETS = """async (scope) => {
  const controls = "a[href], button, input, select, textarea, summary, [role=button],"
    + " [tabindex]:not([tabindex='-1'])";
  const shown = (el) => {
    const box = el.getBoundingClientRect();
    if (box.width < 2 || box.height < 2 || getComputedStyle(el).visibility === "hidden") return false;
    if (el.closest("[hidden], [inert], [aria-hidden=true]")) return false;
    const closed = (e) => e.parentElement?.closest("details:not([open])");
    for (let d = closed(el); d; d = closed(d)) {
      if (!d.querySelector(":scope > summary")?.contains(el)) return false;
    }
    return true;
  };
  const inRunningText = (el) => el.matches("a") &&
    [...el.parentElement.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
  const name = (el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${[...el.classList].join(".")}`
    + ` "${(el.getAttribute("aria-label") || el.textContent).trim().replace(/\\s+/g, " ").slice(0, 40)}"`;
  const missed = [];
  for (const el of document.querySelector(scope).querySelectorAll(controls)) {
    if (!shown(el) || inRunningText(el)) continue;
    el.scrollIntoView({ block: "center", inline: "center" });
    await new Promise((done) => requestAnimationFrame(done));
    const box = el.getBoundingClientRect();
    if (box.right <= 0 || box.bottom <= 0 || box.left >= innerWidth || box.top >= innerHeight) continue;
    const targets = [el, ...(el.labels || [])];
    const hits = (x, y) => {
      const hit = document.elementFromPoint(x, y);
      return hit && targets.some((t) => t.contains(hit));
    };
    const xs = [box.left + box.width / 2], ys = [box.top + box.height / 2];
    if (box.width > 44) xs.push(box.left + 22, box.right - 22);
    if (box.height > 44) ys.push(box.top + 22, box.bottom - 22);
    const steps = [-21, -10.5, 0, 10.5, 21];
    const square = (cx, cy) => steps.every((dx) => steps.every((dy) =>
      cx + dx < 0 || cx + dx >= innerWidth || hits(cx + dx, cy + dy)));  // the screen's edge is no miss
    if (!xs.some((cx) => ys.some((cy) => square(cx, cy)))) {
      missed.push(`${name(el)} ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  window.scrollTo(0, 0);
  return missed;
}"""


@pytest.mark.parametrize("language", ["en", "fr"])
def test_on_a_touch_screen_every_control_takes_a_44px_tap(open_page: OpenPage, language: str) -> None:
    """A phone (390 × 844, touch): every control shown, in every state of the page a person
    reaches (details open, a task's status menu, the other tab and month, a day's details, the
    account menu, the layout being edited), takes a finger's tap around its centre, and no neighbour's hit
    area, nor a clipping card, takes it instead."""
    page = open_page("/", language=language, width=390, height=844, has_touch=True, is_mobile=True)
    assert page.evaluate("matchMedia('(pointer: coarse)').matches")

    def small(scope: str = "body") -> list[str]:
        return page.evaluate(SMALL_TARGETS, scope)

    missed = {"page": small()}
    details = "details.alert-row__more, details.more-rows, details.feed-panel"
    page.evaluate("(s) => document.querySelectorAll(s).forEach((d) => { d.open = true; })", details)
    missed["details open"] = small()
    page.evaluate("(s) => document.querySelectorAll(s).forEach((d) => { d.open = false; })", details)
    page.locator("#incidents-severity-info").click()  # a filter on, said with its "Show all"
    expect(page.locator(".incidents-filtered")).to_be_visible(timeout=15_000)
    missed["incidents filtered"] = small(".incidents-filtered")
    page.locator(".incidents-filtered__all").click()
    expect(page.locator(".incidents-filtered")).to_have_count(0, timeout=15_000)
    page.locator("#widget-tasks .status-tag").first.click()
    missed["status menu"] = small(".status-menu[open]")
    page.locator("#widget-tasks .status-tag").first.click()
    page.locator("#widget-deadlines .day__open").first.click()  # a day's details
    missed["a day's details"] = small(".day-details:popover-open")
    page.keyboard.press("Escape")
    page.locator("#pipelines-tab-mine").click()
    page.locator("#deadlines-next").click()
    expect(page.locator("#deadlines-today")).to_be_visible()
    page.wait_for_function(SETTLED)
    missed["other tab and month"] = small()
    page.locator(".user-menu > summary").click()
    missed["account menu"] = small(".portal-navbar")
    page.locator(".user-menu > summary").click()
    page.locator("#layout-toggle").click()
    expect(page.locator("#layout-toggle")).to_have_attribute("aria-pressed", "true")
    missed["edit layout"] = small()
    said = [f"{state}: {control}" for state, controls in missed.items() for control in controls]
    assert not said, "under 44 × 44 px to tap:\n" + "\n".join(said)
