"""Cards refresh themselves in place while the tab is visible, and only when data changed.

The page's clock is Playwright's: a test moves it on instead of waiting for the interval,
then waits (in real time) for the request it caused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Page, Request, Response, expect

from simulators.base import SimServer
from simulators.uptime_kuma import KumaWorld

from .conftest import CACHE_TTL, REFRESH
from .helpers import SETTLED, OpenPage, PageProblems, set_tab_hidden

# Every change under the status card's body, and under its live region, from now on.
WATCH_MUTATIONS = """() => {
  window.__mutations = { body: 0, region: 0 };
  const watch = (el, key) => new MutationObserver((records) => {
    window.__mutations[key] += records.length;
  }).observe(el, { subtree: true, childList: true, characterData: true, attributes: true });
  watch(document.querySelector("#widget-status-body"), "body");
  watch(document.querySelector("#widget-status [data-live-region]"), "region");
  document.querySelector("#widget-status").__sameCard = true;
}"""


@dataclass
class Polls:
    """The status card's requests and answers, as the browser saw them."""

    page: Page
    sent: list[Request] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    fetched: list[str | None] = field(default_factory=list)  # each answer's X-Widget-Fetched-At

    def on_request(self, request: Request) -> None:
        if request.url.endswith("/widgets/status"):
            self.sent.append(request)

    def on_response(self, response: Response) -> None:
        if response.url.endswith("/widgets/status"):
            self.answered.append(response.status)
            self.fetched.append(response.headers.get("x-widget-fetched-at"))

    def poll_times(self) -> list[int]:
        """The page's own clock (ms) at each poll of the card it started, read in the page:
        Playwright's request events reach the test later, by a second or more on a loaded
        machine, and the test's clock runs on in real time beside the page's installed one."""
        return list(self.page.evaluate("() => window.__statusPolls"))

    def started(self) -> int:
        """How many polls of the card the page has started."""
        return len(self.poll_times())

    def run_until_polled(self, started: int) -> None:
        """Move the page's clock on, a second at a time, until the card starts one more poll
        than `started` (at most two intervals)."""
        for _ in range(REFRESH * 2):
            self.page.clock.run_for(1000)
            if self.started() > started:
                break
        assert self.started() == started + 1, "the card did not poll once in one interval"

    def next(self) -> int:
        """Move the page's clock on until the card polls; return the status of the answer.

        The portal's cache lives in real time: first let what it holds expire (TTL), so the
        poll sees what the simulator serves now.
        """
        self.page.wait_for_timeout(CACHE_TTL * 1000 + 200)
        before = len(self.sent)
        self.run_until_polled(self.started())
        self.wait_answer(before + 1)
        assert len(self.sent) == before + 1, "the card polled more than once"
        return self.answered[-1]

    def next_change(self, polls: int = 6) -> int:
        """The status of the first of the next polls that is not a 204.

        A poll whose data is still current waits only `cache.refresh_within` for its refresh: a
        refresh slower than that (a loaded machine) lands for a later poll, and this one is a 204
        (three polls, about 4 s, were once not enough with three test processes on two cores).
        """
        for _ in range(polls):
            status = self.next()
            if status != 204:
                return status
        return 204

    def wait_answer(self, count: int) -> None:
        for _ in range(150):
            if len(self.answered) >= count:
                break
            self.page.wait_for_timeout(100)
        assert len(self.answered) >= count, "no answer to the poll"
        self.page.wait_for_function(SETTLED)

    def until_fresh(self) -> None:
        """Poll until the status card shows fresh data again (after an upstream's failure: its
        circuit breaker lets a call through again after a second or so)."""
        content = self.page.locator("#widget-status .widget-content")
        for _ in range(6):
            if "is-ok" in (content.get_attribute("class") or ""):
                return
            self.next()
        assert "is-ok" in (content.get_attribute("class") or "")

    def mutations(self) -> dict[str, int]:
        return self.page.evaluate("() => window.__mutations")  # type: ignore[no-any-return]


@pytest.fixture
def polls(open_page: OpenPage) -> Iterator[Polls]:
    page = open_page("/", before=lambda p: p.clock.install())
    found = Polls(page)
    page.on("request", found.on_request)
    page.on("response", found.on_response)
    page.evaluate(WATCH_MUTATIONS)
    page.evaluate(
        """() => {
          window.__statusPolls = [];
          document.addEventListener("htmx:beforeRequest", (event) => {
            if (event.detail.elt.id === "widget-status-body") window.__statusPolls.push(Date.now());
          });
        }"""
    )
    return found


# "Updated at" for a fetch time, in the page's language and zone (as times.js writes it).
UPDATED_AT = """(fetched) => {
  const zone = document.body.getAttribute("data-timezone") || undefined;
  const lang = document.documentElement.lang;
  const clock = new Intl.DateTimeFormat(lang, { timeStyle: "short", timeZone: zone });
  return "Updated at " + clock.format(new Date(fetched));
}"""


def _same_card(page: Page) -> bool:
    return bool(page.evaluate("() => document.querySelector('#widget-status').__sameCard === true"))


def test_unchanged_data_is_not_swapped(polls: Polls) -> None:
    for _ in range(3):
        assert polls.next() == 204
    assert polls.mutations() == {"body": 0, "region": 0}
    checked = polls.page.locator("#widget-status .widget-card__checked").inner_text()
    assert checked.startswith("Updated at ")  # when the data shown was fetched, kept by the wrapper


def test_a_proxys_refusal_leaves_the_card_and_its_time_as_they_were(
    polls: Polls, problems: PageProblems
) -> None:
    """A proxy in front of the portal answers a poll 429 (too many requests): nothing the portal
    drew, so the card keeps its content and "Updated at", and polls again at its interval."""
    problems.allow_console("status of 429|Response Status Error Code 429")
    page = polls.page
    checked = page.locator("#widget-status .widget-card__checked")
    before = checked.inner_text()
    assert before.startswith("Updated at ")
    page.route("**/widgets/status", lambda route: route.fulfill(status=429, body="Too Many Requests"))
    assert polls.next() == 429
    assert checked.inner_text() == before
    page.unroute("**/widgets/status")
    assert polls.next() == 204
    # Each poll here comes after the cache's TTL: this 204 is for data fetched anew, the same
    # data, and "Updated at" says so (a minute later, now and then).
    assert checked.inner_text() == page.evaluate(UPDATED_AT, polls.fetched[-1])


def test_changed_data_is_swapped_in_place_and_announced(polls: Polls, world: KumaWorld) -> None:
    page = polls.page
    link = page.locator("#status-platform-1")  # GitLab's link, focused by a keyboard user
    down = page.locator("#widget-status .status-pill.is-down .status-pill__count")
    for _ in range(4):
        # The card shows the data before the change (a worker may still have held the data of
        # an earlier test's change when the page was drawn, until its refresh lands).
        if down.inner_text() == "1":  # SonarQube alone
            break
        polls.next()
    assert down.inner_text() == "1", "the card never showed the data before the change"
    link.focus()
    world.monitors[1].behaviour = "down"
    assert polls.next_change() == 200, f"answers {polls.answered}, fetched at {polls.fetched}"
    assert down.inner_text() == "2"
    assert page.locator("#tile-dot-gitlab").get_attribute("class") == "tile-dot is-down"
    assert _same_card(page), "the card was replaced, not updated in place"
    assert page.evaluate("() => document.activeElement.id") == "status-platform-1"
    region = page.locator("#widget-status [data-live-region]")
    assert region.inner_text() == "Service status: 2 down (GitLab and SonarQube), 0 degraded"


# The icon the tab shows, and the one the page's cards call for besides the status card.
TAB_ICON = """() => document.querySelector("#portal-icon").getAttribute("href").split("?")[0]"""
OTHERS_ATTENTION = """() => [...document.querySelectorAll(
  ".widget-card:not(#widget-status) .widget-content[data-attention]")].map((c) => c.dataset.attention)"""


def _icon_for(levels: list[str]) -> str:
    worst = max((["warning", "critical"].index(level) + 1 for level in levels), default=0)
    return "/static/icons/" + ["portal.svg", "portal-warning.svg", "portal-critical.svg"][worst]


def test_the_tab_icon_has_a_red_dot_while_a_service_is_down_and_amber_while_one_is_degraded(
    open_page: OpenPage, world: KumaWorld
) -> None:
    """The dashboard is a tab among others all day: its icon says the platform is in trouble."""
    page = open_page("/")
    content = page.locator("#widget-status .widget-content")
    expect(content).to_have_attribute("data-attention", "critical")  # SonarQube is down
    assert page.evaluate(TAB_ICON) == "/static/icons/portal-critical.svg"
    for monitor in world.monitors.values():
        if monitor.behaviour in ("down", "flapping", "pending"):
            monitor.behaviour = "up"
    expect(content).not_to_have_attribute("data-attention", re.compile(".*"), timeout=15_000)
    assert page.evaluate(TAB_ICON) == _icon_for(page.evaluate(OTHERS_ATTENTION))
    world.monitors[1].behaviour = "pending"
    expect(content).to_have_attribute("data-attention", "warning", timeout=15_000)
    assert page.evaluate(TAB_ICON) == _icon_for(["warning", *page.evaluate(OTHERS_ATTENTION)])


# The browser's notifications, recorded (headless Chromium shows none): permission is asked and
# granted at the first request, as when a person clicks "Allow".
NOTIFY_RECORDER = """(() => {
  window.__notified = [];
  class Recorder {
    constructor(title, options) {
      window.__notified.push({ title: title, body: options.body, tag: options.tag });
    }
    close() {}
  }
  Recorder.permission = "default";
  Recorder.requestPermission = () => { Recorder.permission = "granted"; return Promise.resolve("granted"); };
  Object.defineProperty(window, "Notification", { value: Recorder, configurable: true, writable: true });
})()"""


def _gitlab_down_while_hidden(
    open_page: OpenPage, world: KumaWorld, notification: str, until: str
) -> tuple[Page, list[str]]:
    """A page whose `Notification` is `notification` (an init script), notifications asked for in
    the account menu, then hidden while GitLab goes down; its clock moved a minute at a time until
    `until` (a page function) holds. Returns the page and the cards it polled while hidden."""

    def prepared(page: Page) -> None:
        page.add_init_script(notification)
        page.clock.install()

    page = open_page("/", before=prepared)
    page.click("#user-menu summary")
    page.check("#notify-toggle")
    expect(page.locator("#notify-toggle")).to_be_checked()
    page.keyboard.press("Escape")
    polled: list[str] = []
    # Hidden first, then counted: the page's clock runs meanwhile, and a card whose turn came
    # between the two (on a loaded machine) was counted as polled while hidden.
    set_tab_hidden(page, True)
    page.on("request", lambda r: "/widgets/" in r.url and polled.append(r.url.rsplit("/widgets/", 1)[1]))
    world.monitors[1].behaviour = "down"  # GitLab; SonarQube was down already
    for _ in range(4):
        page.clock.run_for(61_000)
        page.wait_for_timeout(1500)
        if page.evaluate(until):
            break
    return page, polled


def test_a_service_going_down_while_the_tab_is_in_the_background_is_notified_once(
    open_page: OpenPage, world: KumaWorld
) -> None:
    """Asked for in the account menu: the dashboard in a background tab still watches the status
    and incidents cards (once a minute; the others wait), and a service that goes down meanwhile
    is a notification. What was down when the page loaded is not news, nor what the person saw."""
    page, polled = _gitlab_down_while_hidden(
        open_page, world, NOTIFY_RECORDER, "() => window.__notified.length > 0"
    )
    viewer = page.evaluate("() => document.body.dataset.viewer")
    assert page.evaluate("() => localStorage.getItem('portal.notify')") == viewer
    assert page.evaluate("() => window.__notified") == [
        {"title": "Service status", "body": "GitLab — Down", "tag": "status-platform-1"}
    ]
    assert {"status", "incidents"} >= {url.split("?")[0] for url in polled}, polled  # the others wait
    assert page.evaluate(TAB_ICON) == "/static/icons/portal-critical.svg"
    # Seen while the page is shown: no notification.
    set_tab_hidden(page, False)
    world.monitors[2].behaviour = "down"
    expect(page.locator("#widget-status .status-pill.is-down .status-pill__count")).to_have_text(
        "3", timeout=15_000
    )
    page.clock.run_for(1000)
    assert page.evaluate("() => window.__notified.length") == 1


# Chrome on Android: Notification is there, permission may be granted, the constructor throws.
NOTIFY_CONSTRUCTOR_THROWS = """(() => {
  class NoConstructor { constructor() { throw new TypeError("Illegal constructor"); } }
  NoConstructor.permission = "granted";
  NoConstructor.requestPermission = () => Promise.resolve("granted");
  Object.defineProperty(window, "Notification", { value: NoConstructor, configurable: true, writable: true });
})()"""


def test_a_browser_that_cannot_show_a_notification_drops_the_wish_and_the_card_goes_on(
    open_page: OpenPage, world: KumaWorld
) -> None:
    down = "#widget-status .status-pill.is-down .status-pill__count"
    page, _ = _gitlab_down_while_hidden(
        open_page,
        world,
        NOTIFY_CONSTRUCTOR_THROWS,
        f"() => document.querySelector('{down}').textContent === '2'",
    )
    assert page.locator(down).inner_text() == "2"  # the card's answer was drawn
    assert page.evaluate("() => localStorage.getItem('portal.notify')") is None


def test_a_change_that_keeps_the_state_is_not_announced(polls: Polls, world: KumaWorld) -> None:
    page = polls.page
    world.monitors[2].base_ping += 200  # Keycloak slower: new numbers, same states
    assert polls.next_change() == 200
    assert polls.mutations()["body"] > 0
    assert polls.mutations()["region"] == 0
    world.monitors[2].behaviour = "pending"
    assert polls.next_change() == 200
    region = page.locator("#widget-status [data-live-region]")
    assert region.inner_text() == "Service status: 1 down (SonarQube), 1 degraded (Keycloak)"


# From now on: every status row marked (to tell a kept node from a new one), and every animation
# that starts, with the row it lights.
WATCH_ROWS = """() => {
  document.querySelectorAll("#widget-status .status-row").forEach((row) => { row.__kept = true; });
  window.__started = [];
  document.addEventListener("animationstart", (event) => {
    const row = event.target.closest(".status-row");
    window.__started.push({ name: event.animationName, row: row ? row.dataset.key : event.target.className });
  });
}"""
ROWS = """() => [...document.querySelectorAll("#widget-status .status-row")].map((row) => ({
  key: row.dataset.key,
  kept: row.__kept === true,
  name: row.querySelector(".status-row__name").textContent.trim(),
}))"""


def test_a_refresh_moves_only_the_row_that_changed(polls: Polls, world: KumaWorld) -> None:
    page = polls.page
    page.evaluate(WATCH_ROWS)
    lit = "() => window.__started.filter((s) => s.name !== 'spin')"  # the card's own refresh spinner aside
    world.monitors[2].base_ping += 200  # Keycloak slower: a new figure, written in place, nothing lit
    assert polls.next_change() == 200
    rows = page.evaluate(ROWS)
    assert rows and all(row["kept"] for row in rows), rows  # merged in place: the same nodes
    assert page.evaluate(lit) == []
    world.monitors[2].behaviour = "pending"  # Keycloak degraded: its row changes state
    assert polls.next_change() == 200
    rows = page.evaluate(ROWS)
    assert all(row["kept"] for row in rows), rows
    keycloak = next(row["key"] for row in rows if row["name"] == "Keycloak")
    keys = {row["key"] for row in rows}
    # animationstart is dispatched at the next frame, which a loaded machine may draw late.
    page.wait_for_function(f"() => ({lit})().some((s) => s.row === {keycloak!r})")
    started = [s for s in page.evaluate(lit) if s["row"] in keys]
    assert started == [{"name": "changed", "row": keycloak}], started  # one light, on that row alone
    assert {"name": "changed", "row": "status-pill is-degraded is-changed"} in page.evaluate(lit)  # 0 → 1
    faded = """() => document.getAnimations()
      .filter((a) => a.effect.target.closest("#widget-status .widget-content"))
      .flatMap((a) => a.effect.getKeyframes().flatMap(Object.keys))"""
    assert "opacity" not in page.evaluate(faded)  # the card's content does not fade in again


def test_the_portal_back_while_the_tab_is_hidden_polls_only_the_background_cards(
    polls: Polls, problems: PageProblems
) -> None:
    """Only the cards that tell a hidden tab what happened (status, incidents) poll there, also
    when the portal answers again after an outage (or a change is told): the others wait for the
    person to come back to the tab (test_a_hidden_tab_does_not_poll says what they do then)."""
    problems.allow_console("Failed to load resource")
    page = polls.page
    cards = page.evaluate(
        """() => [...document.querySelectorAll('.widget-card__body[data-interval]')].map((body) =>
             [body.id.replace(/^widget-|-body$/g, ''), body.hasAttribute('data-background-poll')])"""
    )
    background = {slug for slug, watched in cards if watched}
    assert background and len(background) < len(cards), cards  # both kinds on the page
    set_tab_hidden(page, True)
    asked: list[str] = []
    page.on(
        "request",
        lambda request: asked.append(request.url.rsplit("/widgets/", 1)[1].split("?")[0])
        if "/widgets/" in request.url
        else None,
    )
    page.evaluate("() => window.dispatchEvent(new Event('offline'))")  # the connection lost a moment
    expect(page.locator("#portal-offline")).to_be_visible()
    page.evaluate("() => window.dispatchEvent(new Event('online'))")  # back: asked at once
    expect(page.locator("#portal-offline")).to_be_hidden(timeout=5000)
    page.clock.run_for(1000)
    page.wait_for_timeout(500)
    assert asked and set(asked) <= background, asked  # the others wait for the tab to be shown


def test_a_hidden_tab_does_not_poll(polls: Polls) -> None:
    page = polls.page
    set_tab_hidden(page, True)
    sent, first = len(polls.sent), polls.started()
    page.clock.run_for(REFRESH * 1000 * 4)
    page.wait_for_timeout(500)
    assert polls.started() == first
    # Back on the tab: the overdue card refreshes at once, and not again before a whole interval
    # (the page's own clock says how long it waited between the two).
    set_tab_hidden(page, False)
    page.wait_for_function(SETTLED)
    assert polls.started() == first + 1
    polls.run_until_polled(first + 1)
    polls.wait_answer(sent + 2)
    times = polls.poll_times()[first:]
    assert len(times) == 2, times
    assert times[1] - times[0] >= REFRESH * 1000


def test_the_focus_stays_put_when_a_card_comes_back_from_older_data(
    polls: Polls, kuma_server: SimServer
) -> None:
    """A keyboard user on the link in the status card's incident note (a link without an id, as
    Markdown writes it) while Uptime Kuma fails, then recovers: the banner "Data from …" comes
    and goes above the card's parts, and the focus stays on the link. It fell to the page's body
    when the banner went: matched by position, the banner was turned into the next part, and
    everything after it was built anew."""
    page = polls.page
    page.locator("#widget-status .incident-note a").first.focus()
    page.evaluate("() => { document.activeElement.__focusedByTest = true; }")
    on_link = "() => document.activeElement.__focusedByTest === true"
    content = page.locator("#widget-status .widget-content")
    kuma_server.set_fault("error500")
    try:
        polls.next_change()
        assert "is-stale" in (content.get_attribute("class") or "")
        assert page.evaluate(on_link)
    finally:
        kuma_server.set_fault("none")
    polls.until_fresh()
    assert page.evaluate(on_link), "the focus left the link: " + page.evaluate(
        "() => document.activeElement.outerHTML.slice(0, 80)"
    )


def test_a_card_on_older_data_says_which_tool_failed_and_then_that_it_is_up_to_date_again(
    polls: Polls, kuma_server: SimServer
) -> None:
    """Uptime Kuma fails: the card's live region says from when its data is and why, in the tool's
    words (it said "Service status: showing older data", which named neither); when Uptime Kuma
    answers again, it says the card is up to date (it said the counts alone, as if nothing had
    happened)."""
    page = polls.page
    region = page.locator("#widget-status [data-live-region]")
    content = page.locator("#widget-status .widget-content")
    kuma_server.set_fault("error500")
    try:
        assert polls.next_change() == 200
        assert "is-stale" in (content.get_attribute("class") or "")
        assert re.fullmatch(
            r"Service status: 1 down \(SonarQube\), 0 degraded\. Data from \d\d?:\d\d\s[AP]M, "
            r"(\w+: )?Uptime Kuma answered HTTP 500(\. .+)?",
            region.inner_text(),
        ), region.inner_text()
    finally:
        kuma_server.set_fault("none")
    polls.until_fresh()
    assert region.inner_text() == "Service status: 1 down (SonarQube), 0 degraded. Up to date again"


def test_a_flapping_service_is_not_announced_at_each_flap(polls: Polls, world: KumaWorld) -> None:
    """GitLab goes down, comes back, goes down again, as a flapping monitor does every few
    minutes all day: its card says "2 down" and "1 down" once each; the words said in the
    last ten minutes are not said again at the next flap (they were, at each one), but once
    ten minutes have passed, if still true and not the last heard."""
    page = polls.page
    region = page.locator("#widget-status [data-live-region]")
    heard: list[str] = []
    for behaviour in ("down", "up", "down"):
        world.monitors[1].behaviour = behaviour
        assert polls.next_change() == 200
        if not heard or region.inner_text() != heard[-1]:
            heard.append(region.inner_text())
    assert heard == [
        "Service status: 2 down (GitLab and SonarQube), 0 degraded",
        "Service status: 1 down (SonarQube), 0 degraded",
    ]
    page.clock.fast_forward(10 * 60 * 1000)
    page.wait_for_function(
        "() => document.querySelector('#widget-status [data-live-region]').textContent"
        " === 'Service status: 2 down (GitLab and SonarQube), 0 degraded'"
    )
