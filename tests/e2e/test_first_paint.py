"""A card whose data is fresh in the portal's cache comes with the page: no skeleton, no first
request, its tile dots and time filled; it then polls like any other card.

The portal of this module shares its cache through a real Redis (as replicas do), so that the
data one request fetched is there for the page whichever worker serves it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, Route, expect

from simulators.base import SimServer
from simulators.uptime_kuma import KumaWorld

from ..support.processes import RedisServer, wait_for
from .conftest import REFRESH, e2e_config, served_portal
from .helpers import SETTLED, WATCH_MOVES, OpenPage, PageProblems, describe_violations, placed, run_axe

TTL = 8  # seconds the status data stays fresh here: a page opened right after a fetch has it
FRESH_ENOUGH = 2  # s: data younger than this when the page is opened leaves it TTL - 2 s

# What the page held when its HTML was parsed, before any answer could arrive (besides
# WATCH_MOVES: every layout shift, and what moved once parsing ended).
WATCH_FIRST_PAINT = (
    WATCH_MOVES
    + """
document.addEventListener("DOMContentLoaded", () => {
  window.__parsed = {
    skeleton: Boolean(document.querySelector("#widget-status .widget-skeleton")),
    rows: document.querySelectorAll("#widget-status .status-row").length,
  };
});
"""
)


@pytest.fixture(scope="module")
def warm_portal(kuma_server: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The status card alone, its cache in Redis; the base URL."""
    directory: Path = tmp_path_factory.mktemp("portal-e2e-first-paint")
    redis = RedisServer(directory).start()
    config = e2e_config(kuma_server, only=("status",))
    config["widgets"]["status"].update(ttl=TTL)
    config["cache"]["redis_url"] = redis.url
    try:
        with served_portal(config, directory) as found:
            yield found.url
    finally:
        redis.stop()


def _just_fetched(url: str) -> bool:
    """Whether a poll now is answered with status data fetched under FRESH_ENOUGH s ago (a poll
    of data past its TTL fetches it anew)."""
    answer = requests.get(f"{url}/widgets/status", timeout=10)
    fetched = answer.headers.get("X-Widget-Fetched-At")
    if answer.status_code != 200 or not fetched:
        return False
    return datetime.now(UTC) - datetime.fromisoformat(fetched) < timedelta(seconds=FRESH_ENOUGH)


def _open_warm(open_page: OpenPage, url: str, asked: list[str]) -> Page:
    """The page, opened right after the status data was fetched: not merely while it is fresh
    (a poll answered from data fetched nearly TTL s ago left a busy machine too little time)."""
    wait_for(lambda: _just_fetched(url), timeout=TTL + 20, interval=0.25, what="status data fetched just now")

    def watch(page: Page) -> None:
        page.add_init_script(WATCH_FIRST_PAINT)
        page.on("request", lambda request: "/widgets/status" in request.url and asked.append(request.url))

    return open_page(f"{url}/", before=watch)


def test_a_card_whose_data_is_in_the_cache_comes_with_the_page(open_page: OpenPage, warm_portal: str) -> None:
    asked: list[str] = []
    page = _open_warm(open_page, warm_portal, asked)
    assert page.evaluate("() => window.__parsed") == {"skeleton": False, "rows": 13}
    # Its out-of-band pieces went where they belong: every tile's dot, none left in the card.
    assert page.locator(".tile-dot.is-unknown").count() == 0
    assert page.locator("#tile-dot-sonarqube").get_attribute("aria-label") == "Status: Down"
    assert page.locator(".widget-card__body .tile-dot, .widget-card__body [hx-swap-oob]").count() == 0
    checked = page.locator("#widget-status .widget-card__checked").inner_text()
    assert re.fullmatch(r"Updated at \d{1,2}:\d\d\s[AP]M", checked), checked
    page.wait_for_timeout(1500)
    assert asked == []  # no first request: the card polls at its interval
    # Nothing moved once the HTML was parsed (what moved, and from where to where).
    assert page.evaluate("() => window.__moved()") == []


def test_a_card_that_came_with_the_page_polls_and_announces_a_change(
    open_page: OpenPage, warm_portal: str, world: KumaWorld
) -> None:
    asked: list[str] = []
    page = _open_warm(open_page, warm_portal, asked)
    assert page.evaluate("() => window.__parsed")["skeleton"] is False
    page.evaluate(
        "() => document.querySelectorAll('#widget-status .status-row').forEach((r) => { r.__kept = true; })"
    )
    world.monitors[1].behaviour = "down"  # GitLab
    wait = (TTL + REFRESH * 2 + 5) * 1000  # the data expires, then the next poll brings the change
    expect(page.locator("#tile-dot-gitlab")).to_have_class("tile-dot is-down", timeout=wait)
    pill = page.locator("#widget-status .status-pill.is-down .status-pill__count")
    assert pill.inner_text() == "2" and asked
    kept = "() => [...document.querySelectorAll('#widget-status .status-row')].every((r) => r.__kept)"
    assert page.evaluate(kept), (
        "the answer replaced the rows drawn with the page instead of merging into them"
    )
    # The card's first state came with the page: this change is the first one said aloud.
    region = page.locator("#widget-status [data-live-region]")
    expect(region).to_have_text("Service status: 2 down (GitLab and SonarQube), 0 degraded")


# Whether the cards' grid can be seen now, and whether portal.js packed it.
GRID_SEEN = """() => {
  const grid = document.getElementById("widget-grid");
  const visible = getComputedStyle(grid).visibility === "visible";
  return { visible: visible, packed: grid.classList.contains("is-packed") };
}"""


def test_the_cards_wait_for_a_slow_script_instead_of_showing_then_jumping(
    open_page: OpenPage, warm_portal: str
) -> None:
    # portal.js arrives three seconds after the page (a slow link, or a busy machine). The cards
    # must not be drawn unpacked meanwhile and then move (seen once in CI: a timer showed them).
    def late(route: Route) -> None:
        time.sleep(3)
        route.continue_()

    def watch(page: Page) -> None:
        page.add_init_script(WATCH_FIRST_PAINT)
        page.route("**/js/portal.js*", late)

    page = open_page(f"{warm_portal}/", before=watch)
    placed(page)  # the script's first placing, at its first frame
    assert page.evaluate(GRID_SEEN) == {"visible": True, "packed": True}
    assert page.evaluate("() => window.__parsedAt") > 3000
    page.wait_for_timeout(500)  # layout-shift entries are delivered asynchronously
    assert page.evaluate("() => window.__moved()") == []


def test_the_cards_show_as_a_plain_grid_when_the_script_fails(
    open_page: OpenPage, warm_portal: str, problems: PageProblems
) -> None:
    problems.allow_console(r"Failed to load resource")

    def watch(page: Page) -> None:
        page.route("**/js/portal.js*", lambda route: route.abort())

    page = open_page(f"{warm_portal}/", before=watch, settle=False)
    # Shown once the page was parsed, not after a timer: the load event has just fired.
    assert page.evaluate(GRID_SEEN) == {"visible": True, "packed": False}
    expect(page.locator("#widget-status .status-row").first).to_be_visible()
    # The card shows what came with the page, but nothing will refresh it: said at the top.
    expect(page.locator("#portal-scripts-failed")).to_be_visible()


# A skeleton put into a card now: its animation's name ("none" once nothing is coming).
SKELETON_ANIMATION = """() => {
  const probe = document.createElement("span");
  probe.className = "skeleton";
  document.querySelector(".widget-card__body").append(probe);
  const name = getComputedStyle(probe).animationName;
  probe.remove();
  return name;
}"""


def test_a_page_whose_scripts_start_says_nothing_and_its_skeletons_shimmer(
    open_page: OpenPage, warm_portal: str
) -> None:
    # The other tests' control: a working page neither warns nor stops its skeletons.
    page = open_page(f"{warm_portal}/")
    expect(page.locator("#portal-scripts-failed")).to_be_hidden()
    assert page.evaluate(SKELETON_ANIMATION) == "shimmer"


def test_a_part_of_the_page_that_fails_to_start_leaves_the_cards_refreshing(
    open_page: OpenPage, warm_portal: str, problems: PageProblems
) -> None:
    # The layout editor cannot start: this browser's BroadcastChannel throws (as in a sandboxed
    # or locked-down page). The packing and the cards' polling start after it, and must still.
    problems.allow_console(r"portal: layout did not start")
    errors: list[str] = []

    def watch(page: Page) -> None:
        page.add_init_script(
            "window.BroadcastChannel = function () { throw new DOMException('denied', 'SecurityError'); };"
        )
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))

    page = open_page(f"{warm_portal}/", before=watch, settle=False, language="fr", scheme="dark")
    placed(page)
    assert page.evaluate(GRID_SEEN) == {"visible": True, "packed": True}
    expect(page.locator("#widget-status .status-row").first).to_be_visible()
    # Its next poll goes out (the page's own, not one that came with it).
    page.wait_for_event("request", lambda request: "/widgets/status" in request.url, timeout=REFRESH * 3000)
    expect(page.locator("#portal-scripts-failed")).to_be_hidden()
    assert page.evaluate(SKELETON_ANIMATION) == "shimmer"
    assert any("portal: layout did not start" in line for line in errors), errors  # said where it helps


# The page's parts that portal.js starts or calls, each in its own file: without any of them the
# cards still load, merge their refreshes whole and poll.
PARTS = ("times.js", "controls.js", "morph.js", "packing.js", "layout.js")


def test_without_any_of_the_pages_parts_the_cards_still_poll(
    open_page: OpenPage, warm_portal: str, problems: PageProblems
) -> None:
    # Blocked by a filter, or failed to load: each missing part is said in the console, the rest
    # of the page works and says nothing to the person.
    problems.allow_console(r"Failed to load resource|portal: .* did not start")
    errors: list[str] = []

    def blocked(url: str) -> bool:
        return any(f"/js/{part}" in url for part in PARTS)

    def watch(page: Page) -> None:
        page.route(blocked, lambda route: route.abort())
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))

    page = open_page(f"{warm_portal}/", before=watch, settle=False, language="fr", scheme="light")
    assert page.evaluate(GRID_SEEN) == {"visible": True, "packed": False}  # a plain grid
    expect(page.locator("#widget-status .status-row").first).to_be_visible()
    with page.expect_response(lambda answer: "/widgets/status" in answer.url, timeout=REFRESH * 3000):
        pass  # the page's own poll, not one that came with it
    expect(page.locator("#portal-scripts-failed")).to_be_hidden()
    assert page.evaluate(SKELETON_ANIMATION) == "shimmer"
    said = {line.split(" did not start")[0] for line in errors if "did not start" in line}
    assert said == {
        "portal: times",
        "portal: zone note",
        "portal: calendar days",
        "portal: dropdowns",
        "portal: theme switch",
        "portal: tile filter",
        "portal: layout",
        "portal: packing",
    }, errors
    # The theme switch still works, as the plain link it is without its script.
    page.locator("#theme-switch").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")


@pytest.mark.parametrize("script", ["htmx.min.js", "portal.js"])
@pytest.mark.parametrize(("language", "scheme"), [("en", "dark"), ("fr", "light")])
def test_a_page_whose_scripts_did_not_start_says_so_and_offers_a_reload(
    open_page: OpenPage, warm_portal: str, problems: PageProblems, script: str, language: str, scheme: str
) -> None:
    # Blocked by an extension or a network filter: the cards could neither load nor refresh.
    problems.allow_console(r"Failed to load resource")

    def blocked(url: str) -> bool:
        return f"/{script}" in url

    def watch(page: Page) -> None:
        page.route(blocked, lambda route: route.abort())

    page = open_page(f"{warm_portal}/", before=watch, settle=False, language=language, scheme=scheme)
    notice = page.locator("#portal-scripts-failed")
    expect(notice).to_be_visible()
    violations = run_axe(page)["violations"]
    assert not violations, describe_violations(violations)
    said, reload = {
        "en": ("The portal’s scripts did not start, so the cards can neither load nor refresh.", "Reload"),
        "fr": (
            "Les scripts du portail n’ont pas démarré\u00a0: "
            "les cartes ne peuvent ni se charger ni se rafraîchir.",
            "Recharger",
        ),
    }[language]
    expect(notice.get_by_role("alert")).to_contain_text(said)
    link = notice.get_by_role("link", name=reload)
    assert link.get_attribute("href") == "/"
    assert page.evaluate(SKELETON_ANIMATION) == "none"  # nothing is coming: no "loading" shimmer
    page.unroute(blocked)  # the extension allows them now: the link reloads a working page
    link.click()
    page.wait_for_function(SETTLED)
    expect(notice).to_be_hidden()


def test_without_javascript_the_page_says_the_cards_need_it(open_page: OpenPage, warm_portal: str) -> None:
    page = open_page(f"{warm_portal}/", settle=False, java_script_enabled=False, language="fr", scheme="dark")
    notice = page.locator("#portal-needs-scripts")
    expect(notice).to_be_visible()  # drawn as the notice above, which axe checks (axe needs scripts)
    expect(notice).to_contain_text(
        "Ce tableau de bord a besoin de JavaScript pour charger et rafraîchir ses cartes\u00a0: "
        "autorisez-le pour ce site."
    )
    expect(page.locator("#portal-scripts-failed")).to_be_hidden()  # the notice above says it all
    assert page.evaluate(SKELETON_ANIMATION) == "none"
    # The tools' links are plain links: they work without it.
    expect(page.locator("a.tool-tile[href^='http']").first).to_be_visible()
