"""The Taiga cards in a real browser: a status changed from the keyboard, the month moved, axe.

A portal of its own (two gunicorn workers, demo identities) reads the Taiga simulator, which
runs in this process so the test can see what landed in "Taiga".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from simulators import taiga
from simulators.base import SimServer
from simulators.taiga import TaigaWorld

from ..conftest import example_config
from ..support.processes import portal_process
from ..support.taiga_portal import SERVICE, with_taiga
from .conftest import REFRESH
from .helpers import SETTLED, PageProblems, describe_violations, let_go, placed, run_axe, watched_page


@pytest.fixture(scope="module")
def tracker() -> Iterator[tuple[SimServer, TaigaWorld]]:
    server, world = taiga.make_server()
    world.on_request(lambda w: None)  # nothing moves but what the test does
    server.start()
    yield server, world
    server.stop()


@contextmanager
def _portal(
    tracker: tuple[SimServer, TaigaWorld],
    kuma_server: SimServer,
    directory: Path,
    widgets: dict[str, dict[str, int]],
    env: dict[str, str],
) -> Iterator[str]:
    """The demo's identities, the Taiga and Uptime Kuma simulators, the cards' `widgets` settings."""
    config = example_config()
    config["portal"]["demo"] = True
    config["auth"] = {"mode": "demo"}
    config["upstreams"]["uptime_kuma"].update(url=kuma_server.url, timeout=3)
    for other in ("prometheus", "alertmanager", "gitlab"):  # tools this test has no simulator of
        config["upstreams"].pop(other, None)
    config = with_taiga(config, f"{tracker[0].url}/api/v1/")
    config["database"]["data_dir"] = str(directory / "data")
    for slug, settings in widgets.items():
        config["widgets"][slug].update(settings)
    with portal_process(config, directory, workers=2, threads=4, extra_env={**SERVICE, **env}) as url:
        yield url


@pytest.fixture(scope="module")
def taiga_portal(
    tracker: tuple[SimServer, TaigaWorld], kuma_server: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("portal-taiga-e2e")
    refreshing = {"refresh": REFRESH, "ttl": 2}
    with _portal(tracker, kuma_server, directory, {"tasks": refreshing, "deadlines": refreshing}, {}) as url:
        yield url


@pytest.fixture
def page_of(browser: Browser, taiga_portal: str) -> Iterator[Any]:
    contexts: list[BrowserContext] = []
    problems = PageProblems()

    def open_(
        language: str = "en",
        scheme: str = "light",
        user: str = "camille",
        allow: tuple[str, ...] = (),
        width: int = 1280,
        height: int = 1000,
    ) -> Page:
        # A change or a month step aborts the card's poll in flight (hx-sync replace), by design,
        # and htmx logs each abort as two errors (htmx:afterRequest, htmx:sendAbort): whether a
        # poll was in flight is the machine's luck. A failed request is still seen: htmx logs it
        # as htmx:sendError or htmx:timeout besides.
        for pattern in (*allow, r"^htmx:afterRequest", r"^htmx:sendAbort"):  # and what the test expects
            problems.allow_console(pattern)
        context = browser.new_context(
            base_url=taiga_portal,
            locale=language,
            color_scheme=scheme,
            viewport={"width": width, "height": height},
        )
        contexts.append(context)
        context.set_default_timeout(20_000)
        page = watched_page(context, problems)
        page.goto(f"/auth/demo-user/{user}")
        page.goto("/")
        page.wait_for_function(SETTLED)
        page.wait_for_selector("#widget-tasks .task-row")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not problems.console, f"console errors: {problems.console}"
    assert not problems.csp, f"Content-Security-Policy violations: {problems.csp}"


def _task(world: TaigaWorld, subject: str) -> Any:
    """The tracker's task whose subject starts so."""
    return next(i for i in world.items["task"].values() if i.subject.startswith(subject))


def test_a_status_changed_from_the_keyboard_updates_the_card(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    _, world = tracker
    page = page_of()
    item = _task(world, "Relire la politique")
    summary = page.locator(f"#tasks-task-{item.id}-status")
    expect(summary).to_contain_text("New")
    menu = page.locator(f"#tasks-task-{item.id}-menu")
    target = menu.locator("button", has_text="Ready for test")
    # The board can land before the statuses (the menu then says they are being read, and the
    # card asks again soon): Tab would pass the menu by. A person would wait for them too.
    expect(target).to_be_attached()
    summary.focus()
    page.keyboard.press("Enter")  # opens the menu
    expect(menu).to_have_attribute("open", "")
    for _ in range(8):  # Tab through the statuses to "Ready for test"
        page.keyboard.press("Tab")
        if target.evaluate("(el) => el === document.activeElement"):
            break
    assert target.evaluate("(el) => el === document.activeElement"), "Tab did not reach the status"
    page.keyboard.press("Enter")
    expect(page.locator("#widget-tasks .card-notice")).to_contain_text("is now Ready for test")
    expect(page.locator(f"#tasks-task-{item.id}-status")).to_contain_text("Ready for test")
    focused = page.evaluate("() => document.activeElement && document.activeElement.id")
    assert focused == f"tasks-task-{item.id}-status"  # the keyboard user stays on the item
    assert not menu.evaluate("(m) => m.open")  # the menu has done its work
    assert world.statuses["task"][item.status].name == "Ready for test" and item.version == 2


def test_an_issue_shows_as_one_and_its_status_changes_from_the_keyboard(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A bug assigned to camille is on her card, said to be an issue and linked to it in Taiga;
    its own workflow's statuses are in its menu, and a change lands on the issue, not on the
    task that has the same id."""
    _, world = tracker
    page = page_of()
    issue = next(i for i in world.items["issue"].values() if i.subject.startswith("Question"))
    task = world.items["task"][issue.id]
    task_before = (task.status, task.version)
    uid = f"tasks-issue-{issue.id}"
    row = page.locator(f'#widget-tasks .task-row[data-key="{uid}"]')
    expect(row.locator(".task-row__kind")).to_have_text(f"Issue #{issue.ref}")
    expect(row.locator(f"#{uid}-link")).to_have_attribute("href", re.compile(rf"/issue/{issue.ref}$"))
    _open_menu_by_keyboard(page, uid, "Postponed")  # an issue's status: tasks have none such
    page.keyboard.press("Enter")
    expect(page.locator("#widget-tasks .card-notice")).to_contain_text("is now Postponed")
    expect(page.locator(f"#{uid}-status")).to_contain_text("Postponed")
    assert page.evaluate(FOCUSED_ID) == f"{uid}-status"
    assert world.statuses["issue"][issue.status].name == "Postponed" and issue.version == 2
    assert (task.status, task.version) == task_before


def test_a_status_chosen_with_the_mouse_closes_its_menu(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    _, world = tracker
    page = page_of()
    # An item no other test here reads the status of (its first open status, "New", keeps it listed).
    item = _task(world, "Mettre à jour K3s")
    menu = page.locator(f"#tasks-task-{item.id}-menu")
    expect(menu.locator(".status-menu__option").first).to_be_attached()
    menu.locator("summary").click()
    choice = menu.locator(".status-menu__option:not([aria-disabled])").first
    chosen = choice.inner_text().strip()
    choice.click()
    expect(page.locator("#widget-tasks .card-notice")).to_contain_text(f"is now {chosen}")
    page.wait_for_function(SETTLED)
    assert not menu.evaluate("(m) => m.open")  # it stayed open over the rows below (until a poll)


FOCUSED_ID = "() => document.activeElement && document.activeElement.id"
# What holds a card's polls, for a test's failure to say (portal.js's per-card record).
POLL_STATE = """(card) => {
  const entry = document.querySelector(`#${card} .widget-card__body`)._portalPoll;
  return { acting: entry.acting ? entry.acting.tagName : null, inFlight: entry.inFlight,
    stopped: entry.stopped, offline: document.body.classList.contains("is-portal-offline"),
    sincePoll: Date.now() - entry.lastPoll };
}"""
# Items tests name, which the tests that close "some item" leave alone; "Renouveler" stays
# overdue for the calendar's words (closed first, it left no overdue day when run in order).
TAKEN = (
    "Renouveler les certificats",
    "Relire la politique",
    "Mettre à jour K3s",
    "Documenter la rotation",
    "Nettoyer les anciennes",
    "Question",
)


def _open_menu_by_keyboard(page: Page, uid: str, choice: str) -> Any:
    """Enter on the status, then Tab to `choice`: the option, focused."""
    option = page.locator(f"#{uid}-menu button", has_text=choice)
    expect(option).to_be_attached()
    page.locator(f"#{uid}-status").focus()
    page.keyboard.press("Enter")
    for _ in range(8):
        page.keyboard.press("Tab")
        if option.evaluate("(el) => el === document.activeElement"):
            return option
    raise AssertionError(f"Tab did not reach {choice!r} in {uid}")


def _open_status_of(page: Page, uid: str, timeout: float = 20_000) -> str:
    """The first status `uid`'s menu offers that leaves the item open (once the menu is there)."""
    options = page.locator(f"#{uid}-menu .status-menu__option:not([aria-disabled])").filter(
        has_not=page.locator(".status-menu__closes")
    )
    expect(options.first).to_be_attached(timeout=timeout)
    return (options.first.text_content() or "").strip()


def test_the_poll_after_a_change_keeps_an_open_menu_and_the_focus_in_it(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """The change's notice goes at the next poll: nothing else may move with it (the task list was
    built anew, which closed the menu the person was in and dropped their focus to the body)."""
    _, world = tracker
    page = page_of()
    first, second = (
        f"tasks-task-{_task(world, subject).id}" for subject in ("Mettre à jour K3s", "Relire la politique")
    )
    # the statuses may come with a later poll than the items
    expect(page.locator(f"#{first}-menu .status-menu__option").first).to_be_attached()
    target = next(
        name
        for name in ("In progress", "New")
        if page.locator(f"#{first}-menu button:not([aria-disabled])", has_text=name).count()
    )
    _open_menu_by_keyboard(page, first, target)
    page.keyboard.press("Enter")
    notice = page.locator("#widget-tasks .card-notice")
    expect(notice).to_contain_text(f"is now {target}")
    options = page.locator(f"#{second}-menu .status-menu__option:not([aria-disabled])")
    option = _open_menu_by_keyboard(page, second, (options.first.text_content() or "").strip())
    option_text = (option.text_content() or "").strip()
    list_node = page.locator("#widget-tasks .task-list").element_handle()
    expect(notice).to_have_count(0, timeout=15_000)  # the card's next poll (every 5 s here)
    assert page.locator(f"#{second}-menu").evaluate("(m) => m.open")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == option_text
    assert list_node is not None and list_node.evaluate("(n) => n.isConnected")  # the same list


def test_an_item_closed_from_the_keyboard_leaves_the_focus_on_the_next_item(page_of: Any) -> None:
    page = page_of()
    rows = page.locator("#widget-tasks .task-row")
    keys = rows.evaluate_all("(rows) => rows.map((r) => [r.dataset.key, r.querySelector('bdi').textContent])")
    index = next(
        i for i, (_, subject) in enumerate(keys[:-1]) if not subject.startswith(TAKEN) and i + 1 < len(keys)
    )
    uid, following = keys[index][0], keys[index + 1][0]
    closing = page.locator(f"#{uid}-menu .status-menu__closes").first
    expect(closing).to_be_attached()
    _open_menu_by_keyboard(page, uid, (closing.locator("xpath=..").text_content() or "").strip())
    page.keyboard.press("Enter")
    expect(page.locator(f"#{uid}-status")).to_have_count(0)  # off the list
    after = rows.evaluate_all("(rows) => rows.map((r) => r.dataset.key)")
    notice = page.locator("#widget-tasks .card-notice").all_inner_texts()
    assert page.evaluate(FOCUSED_ID) == f"{following}-status", f"rows before {keys}, after {after}; {notice}"


def test_on_a_phone_an_item_closed_far_below_the_cards_top_says_so_in_view(page_of: Any) -> None:
    """The closed item's row is gone and the card's notice is at its top, off screen: the outcome
    shows at the foot of the screen for a while (the notice is what screen readers hear)."""
    page = page_of(width=390, height=844)
    rows = page.locator("#widget-tasks .task-row")
    keys = rows.evaluate_all("(rows) => rows.map((r) => [r.dataset.key, r.querySelector('bdi').textContent])")
    uid = next(key for key, subject in reversed(keys[:-1]) if not subject.startswith(TAKEN))
    page.locator(f"#{uid}-status").scroll_into_view_if_needed()
    page.locator(f"#{uid}-status").click()
    page.locator(f"#{uid}-menu .status-menu__closes").first.locator("xpath=..").click()
    expect(page.locator(f"#{uid}-status")).to_have_count(0)
    notice = page.locator("#widget-tasks .card-notice")
    toast = page.locator("#portal-toast")
    expect(toast).to_be_visible()
    assert (toast.text_content() or "").strip() == (notice.text_content() or "").strip()
    box = toast.bounding_box()
    assert box and box["y"] >= 0 and box["y"] + box["height"] <= 844 and box["x"] >= 0
    assert notice.evaluate("(n) => n.getBoundingClientRect().bottom < 0")  # why it is there
    expect(toast).to_be_hidden(timeout=10_000)


# Whether each option of `menu` is what is drawn at its centre, the page scrolled to the menu.
# (Not scrollIntoView: it would scroll the card's clipped content, not only the page.)
OPTIONS_HIT = """(menu) => [...menu.querySelectorAll(".status-menu__option")].map((option) => {
  window.scrollBy(0, menu.querySelector(".status-menu__list").getBoundingClientRect().top - 120);
  const box = option.getBoundingClientRect();
  const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  return hit !== null && hit.closest(".status-menu__option") === option;
})"""


def test_the_last_rows_status_menu_is_whole_and_closes_as_a_menu_does(page_of: Any) -> None:
    page = page_of()
    menus = page.locator("#widget-tasks details.status-menu")
    expect(menus.last.locator(".status-menu__option").first).to_be_attached()
    last = menus.last
    last.locator("summary").click()
    expect(last).to_have_attribute("open", "")
    # Every option can be reached by the pointer: none is hidden under the card's edge or
    # another card (the card used to clip the menu of its last rows).
    reachable = last.evaluate(OPTIONS_HIT)
    assert len(reachable) >= 3 and all(reachable), reachable
    page.keyboard.press("Escape")
    expect(last).not_to_have_attribute("open", "")
    assert last.locator("summary").evaluate("(el) => el === document.activeElement")
    last.locator("summary").click()
    page.locator("#dashboard-title").click()  # a click elsewhere on the page
    expect(last).not_to_have_attribute("open", "")
    last.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(last).to_have_attribute("open", "")
    for _ in range(12):  # Tab past the options: the focus leaves the menu, which closes
        page.keyboard.press("Tab")
        if not last.evaluate("(menu) => menu.contains(document.activeElement)"):
            break
    expect(last).not_to_have_attribute("open", "")
    # Opening one closes another.
    first = menus.first
    first.locator("summary").click()
    last.locator("summary").click()
    expect(first).not_to_have_attribute("open", "")
    expect(last).to_have_attribute("open", "")


# When a request of the page got no answer (or was refused on its way), and when the tasks card
# next asked for its data.
POLL_AFTER_LOSS = """() => {
  window.__lost = window.__polledAfterLoss = null;
  for (const name of ["htmx:sendError", "htmx:responseError"]) {
    window.addEventListener(name, () => { window.__lost = performance.now(); }, true);  // first
  }
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (window.__lost === null || window.__polledAfterLoss !== null) return;
    if (!event.detail.elt.matches("#widget-tasks .widget-card__body")) return;
    window.__polledAfterLoss = performance.now();
  });
}"""


def test_a_status_change_that_gets_no_answer_is_said_and_the_card_shows_where_it_stands(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """The connection drops while a status change is on its way. Kept or not, the page hears
    nothing back: the card says the change could not be confirmed (and the live region reads it
    out), then shows Taiga's state. A change that reached Taiga shows at once; one that did not
    leaves the old status and the note, until it is made again."""
    _, world = tracker
    lost = ("htmx:afterRequest", "htmx:sendError", "Failed to load resource")
    page = page_of(allow=tuple(re.escape(line) for line in lost))
    item = _task(world, "Documenter la rotation")
    summary = page.locator(f"#tasks-task-{item.id}-status")
    menu = page.locator(f"#tasks-task-{item.id}-menu")
    note = page.locator("#widget-tasks [data-choice-note]")
    said = "Your change could not be confirmed: the portal did not answer."
    expect(summary).to_contain_text("New")
    changes = f"**/widgets/tasks/task/{item.id}/status*"

    page.route(changes, lambda route: route.abort("connectionreset"))  # never reaches the portal
    summary.click()
    menu.locator("button", has_text="In progress").click()
    expect(note).to_have_text(re.compile(re.escape(said)))
    expect(page.locator("#widget-tasks [data-live-region]")).to_contain_text(said)
    expect(menu.locator(".status-menu__note")).to_contain_text(said)  # where the person is looking
    # The keyboard's focus back on the choice pressed (it fell to the body), to try again from there.
    page.wait_for_function("() => document.activeElement.classList.contains('status-menu__option')")
    assert "In progress" in page.evaluate("() => document.activeElement.textContent")
    page.wait_for_timeout(1500)  # the card asked for its data: nothing changed in Taiga
    expect(summary).to_contain_text("New")
    expect(note).to_be_visible()
    assert world.statuses["task"][item.status].name == "New"

    def kept_then_lost(route: Route) -> None:
        route.fetch()  # Taiga changes...
        route.abort("connectionreset")  # ...and the answer is lost on its way back

    page.unroute(changes)
    page.route(changes, kept_then_lost)
    page.evaluate(POLL_AFTER_LOSS)
    if menu.get_attribute("open") is None:
        summary.click()
    menu.locator("button", has_text="In progress").click()
    expect(summary).to_contain_text("In progress")
    # The card's own poll, at once: not at its next turn, up to a whole period later (its poll
    # was once skipped, the card still held by the change whose answer was lost).
    lost, polled = page.evaluate("() => [window.__lost, window.__polledAfterLoss]")
    assert lost is not None and polled is not None and polled - lost < 250, (lost, polled)
    expect(note).to_be_hidden()
    assert world.statuses["task"][item.status].name == "In progress"


def test_a_status_change_stopped_on_its_way_says_it_was_not_made(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A proxy in front of the portal refuses the change (Traefik's rate limit: 429). Nothing was
    done, and the card says so, under it and in the menu, with the status; it stays on the next
    poll, which shows the task as it was (said nothing before: the 4xx was taken as an answer)."""
    _, world = tracker
    page = page_of(allow=(re.escape("Failed to load resource"), re.escape("Response Status Error Code 429")))
    item = _task(world, "Nettoyer les anciennes")
    uid = f"tasks-task-{item.id}"
    before = world.statuses["task"][item.status].name
    summary = page.locator(f"#{uid}-status")
    menu = page.locator(f"#{uid}-menu")
    note = page.locator("#widget-tasks [data-choice-note]")
    said = "Your change was not made (HTTP 429). Try again in a moment."
    choice = _open_status_of(page, uid)
    expect(summary).to_contain_text(before)
    page.route(
        f"**/widgets/tasks/task/{item.id}/status*",
        lambda route: route.fulfill(status=429, body="Too Many Requests", headers={"Retry-After": "1"}),
    )
    page.evaluate(POLL_AFTER_LOSS)
    summary.click()
    menu.locator("button", has_text=choice).click()
    expect(note).to_have_text(said)
    expect(page.locator("#widget-tasks [data-live-region]")).to_contain_text(said)
    expect(menu.locator(".status-menu__note")).to_contain_text(said)
    # The card asks where things stand at once, not at its next turn.
    lost, polled = page.evaluate("() => [window.__lost, window.__polledAfterLoss]")
    assert lost is not None and polled is not None and polled - lost < 250, (lost, polled)
    page.wait_for_timeout(1000)
    expect(summary).to_contain_text(before)
    expect(note).to_have_text(said)  # an unchanged card does not take it away
    assert world.statuses["task"][_task(world, "Nettoyer les anciennes").status].name == before


def test_a_status_change_held_without_an_answer_ends_at_the_timeout_and_says_so(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A proxy holds the change and answers nothing, ever: at htmx-config's timeout (here made
    short) the card says the change could not be confirmed, as when the connection drops."""
    _, world = tracker
    page = page_of(allow=(re.escape("htmx:afterRequest"), re.escape("htmx:timeout")))
    item = _task(world, "Ajouter les sondes readiness")  # no other test changes it
    summary = page.locator(f"#tasks-task-{item.id}-status")
    menu = page.locator(f"#tasks-task-{item.id}-menu")
    held: list[Route] = []
    changes = f"**/widgets/tasks/task/{item.id}/status*"
    page.route(changes, lambda route: held.append(route))  # never answered
    page.evaluate("() => { htmx.config.timeout = 1500; }")
    summary.click()
    menu.locator("button", has_text="In progress").click()
    said = "Your change could not be confirmed: the portal did not answer."
    expect(page.locator("#widget-tasks [data-choice-note]")).to_have_text(re.compile(re.escape(said)))
    expect(menu.locator(".status-menu__note")).to_contain_text(said)
    assert len(held) == 1 and world.statuses["task"][item.status].name == "Ready for test"
    let_go(held[0], abort=True)  # the page gave up on it
    page.unroute(changes)


def test_two_quick_clicks_are_not_taken_for_a_change_without_an_answer(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A second status chosen while the first is on its way: the page drops the first request
    (htmx aborts it). That is no failure to report: the note never shows, the second is said."""
    _, world = tracker
    page = page_of()  # htmx logs the dropped request: allowed for every page
    item = _task(world, "Nettoyer les anciennes")
    page.evaluate(
        """() => {
          const note = document.querySelector("#widget-tasks [data-choice-note]");
          window.__noteShown = false;
          new MutationObserver(() => { if (!note.hidden) window.__noteShown = true; })
            .observe(note, { attributes: true, childList: true });
        }"""
    )
    page.evaluate(
        """(id) => {
          const form = document.querySelector(`#tasks-task-${id}-menu form`);
          const choices = [...form.querySelectorAll("button:not([aria-disabled])")];
          choices[0].click();
          choices[1].click();
        }""",
        item.id,
    )
    expect(page.locator("#widget-tasks .card-notice")).to_contain_text("is now")
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__noteShown") is False


def test_a_change_made_while_the_card_polls_is_no_sign_of_the_portal_being_down(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A status chosen while the card's poll is on its way: the change replaces that poll (the
    page drops it). The page took the dropped poll for the portal being unreachable: its banner
    came up, and two seconds later every card polled, which took the change's notice away."""
    _, world = tracker
    page = page_of()  # htmx logs the dropped request: allowed for every page
    item = _task(world, "Relire la politique")
    uid = f"tasks-task-{item.id}"
    expect(page.locator(f"#{uid}-menu .status-menu__option").first).to_be_attached()
    page.evaluate(
        """() => {
          window.__offline = false;
          new MutationObserver(() => {
            if (document.body.classList.contains("is-portal-offline")) window.__offline = true;
          }).observe(document.body, { attributes: true });
        }"""
    )
    held: list[Route] = []

    def hold_polls(route: Route) -> None:
        if route.request.method == "GET":
            held.append(route)  # the card's poll, kept on its way
        else:
            route.continue_()

    polls = re.compile(r"/widgets/tasks(\?.*)?$")
    page.route(polls, hold_polls)
    try:
        for _ in range(150):  # the card's next turn: every 5 s here
            if held:
                break
            page.wait_for_timeout(100)
        assert held, "the card did not poll"
        choice = _open_status_of(page, uid)
        _open_menu_by_keyboard(page, uid, choice)
        page.keyboard.press("Enter")
        notice = page.locator("#widget-tasks .card-notice")
        expect(notice).to_contain_text(f"is now {choice}")
        page.wait_for_timeout(2500)  # the banner's first try came after 2 s, then every card polled
        assert page.evaluate("() => window.__offline") is False
        expect(page.locator("#portal-offline")).to_be_hidden()
        expect(notice).to_contain_text(f"is now {choice}")  # kept until the card's own turn (5 s)
    finally:
        page.unroute(polls)
        for route in held:
            let_go(route)  # the page dropped it


def test_the_cards_turn_while_a_change_is_on_its_way_does_not_take_its_notice_away(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Taiga slow to take a change, longer than the card's period: the card's turn came while the
    change was on its way, htmx queued that poll behind it and sent it the moment the change
    was answered, and the poll's answer took the change's notice away at once."""
    _, world = tracker
    page = page_of()
    item = _task(world, "Relire la politique")
    uid = f"tasks-task-{item.id}"
    expect(page.locator(f"#{uid}-menu .status-menu__option").first).to_be_attached()
    held: list[Route] = []
    polled: list[str] = []
    poll = re.compile(r"/widgets/tasks(\?.*)?$")
    page.on("request", lambda r: polled.append(r.url) if poll.search(r.url) else None)
    changes = f"**/widgets/tasks/task/{item.id}/status*"
    sent: list[str] = []

    def hold_the_first(route: Route) -> None:
        sent.append(route.request.method)
        if held:
            route.continue_()  # a second one goes on: the assertion below names it
        else:
            held.append(route)

    page.route(changes, hold_the_first)
    choice = _open_status_of(page, uid)
    _open_menu_by_keyboard(page, uid, choice)
    page.keyboard.press("Enter")
    for _ in range(50):
        if held:
            break
        page.wait_for_timeout(100)
    assert held, "the change was not sent"
    page.wait_for_timeout((REFRESH + 1) * 1000)  # the card's turn comes meanwhile
    polled.clear()
    held[0].continue_()
    page.unroute(changes)
    notice = page.locator("#widget-tasks .card-notice")
    expect(notice).to_contain_text(f"is now {choice}")
    page.wait_for_timeout(2000)
    assert polled == [], "the card polled as soon as the change was answered"
    expect(notice).to_contain_text(f"is now {choice}")
    try:
        expect(notice).to_have_count(0, timeout=15_000)  # the card's next turn: it polls again
    except AssertionError as error:
        raise AssertionError(f"{page.evaluate(POLL_STATE, 'widget-tasks')}; changes sent: {sent}") from error
    assert polled
    assert sent == ["POST"], "the change was sent more than once"


def test_a_change_made_while_taiga_is_slow_shows_at_once_and_the_card_polls_on(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Taiga slow (0.5 s a call: the change takes a second or two, the board read anew longer
    than a request waits for it). The change's answer shows the card's items with the new status,
    said to be older data, never "Data unavailable"; the card polls on at its turn and shows the
    board fresh. (Its polls were once held for good after such a change: htmx's afterRequest of
    the change, fired on the form the answer had replaced, never reached the page.)"""
    server, world = tracker
    page = page_of()
    item = _task(world, "Relire la politique")
    uid = f"tasks-task-{item.id}"
    choice = _open_status_of(page, uid)
    rows = page.locator("#widget-tasks .task-row")
    before = rows.count()
    polled: list[str] = []  # the card's requests from the change on, in order
    poll = re.compile(r"/widgets/tasks(\?.*)?$")

    def heard(request: Any) -> None:
        if "/status" in request.url and request.method == "POST":
            polled.append("change")
        elif poll.search(request.url) and polled:
            polled.append(request.url)

    server.latency = 0.5
    try:
        _open_menu_by_keyboard(page, uid, choice)
        page.on("request", heard)  # from here: a poll right after the change's answer counts too
        page.keyboard.press("Enter")
        notice = page.locator("#widget-tasks .card-notice")
        expect(notice).to_contain_text(f"is now {choice}", timeout=15_000)
        body = page.locator("#widget-tasks .widget-card__body")
        assert "Data unavailable" not in body.inner_text()
        assert rows.count() == before
        expect(page.locator(f"#{uid}-status")).to_contain_text(choice)
        content = page.locator("#widget-tasks .widget-content")
        said = f"{content.get_attribute('class')} {content.get_attribute('data-poll')}"
        # Not shown as fresh: older data (the answer waited for the board in vain), or, when other
        # requests held the places to wait, the card asks again soon.
        assert "is-stale" in said or said.endswith(" soon"), said
        assert page.evaluate(FOCUSED_ID) == f"{uid}-status"  # the keyboard stays on the item
        try:  # the card's next turn, a period after the answer: it polls, and the board is fresh
            expect(page.locator("#widget-tasks .widget-content.is-ok")).to_be_attached(
                timeout=(REFRESH * 3 + 5) * 1000
            )
        except AssertionError as error:
            raise AssertionError(f"{page.evaluate(POLL_STATE, 'widget-tasks')}; polled: {polled}") from error
    finally:
        server.latency = 0.0
    assert polled[0] == "change" and len(polled) > 1, f"the card did not poll after the change: {polled}"
    expect(page.locator(f"#{uid}-status")).to_contain_text(choice)
    assert not page.evaluate("() => document.body.classList.contains('is-portal-offline')")


WEBHOOK_KEY = "webhook-key-for-the-browser-test"


def _camille_at(browser: Browser, url: str, stopped_clock: bool = False) -> tuple[BrowserContext, Page]:
    """A browser of its own at `url` (English, 1280×1000), Camille signed in, the page settled;
    `stopped_clock`: the page's clock installed first, for the test to move. The caller closes it."""
    context = browser.new_context(base_url=url, locale="en", viewport={"width": 1280, "height": 1000})
    try:
        page = context.new_page()
        if stopped_clock:
            page.clock.install()
        page.goto("/auth/demo-user/camille")
        page.goto("/")
        page.wait_for_function(SETTLED)
    except Exception:
        context.close()
        raise
    return context, page


@pytest.fixture(scope="module")
def pushed_portal(
    tracker: tuple[SimServer, TaigaWorld], kuma_server: SimServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The Taiga cards poll every 5 minutes; the status card every 5 s (answers come often)."""
    slow = {"refresh": 300, "ttl": 300}
    widgets = {"tasks": slow, "deadlines": slow, "status": {"refresh": 5, "ttl": 5}}
    env = {"PORTAL_TAIGA_WEBHOOK_SECRET": WEBHOOK_KEY}
    with _portal(tracker, kuma_server, tmp_path_factory.mktemp("portal-taiga-push"), widgets, env) as url:
        yield url


def test_a_change_pushed_by_taigas_webhook_shows_without_waiting_for_the_cards_poll(
    browser: Browser, pushed_portal: str, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    _, world = tracker
    context, page = _camille_at(browser, pushed_portal)
    try:
        # A cold card may first say it is loading and poll again soon: its rows are awaited.
        rows = page.locator("#widget-tasks .task-row__subject")
        expect(rows.first).to_be_visible(timeout=15_000)
        subjects = rows.all_inner_texts()
        items = [
            i
            for i in world.items["task"].values()
            if i.subject in subjects and not i.subject.startswith("Relire la politique")
        ]
        assert items, f"none of the card's tasks is in the tracker: {subjects}"
        item = items[0]
        status = page.locator(f"#tasks-task-{item.id}-status")
        before = status.inner_text().strip()
        targets = [
            s
            for s in world.statuses["task"].values()
            if s.project == item.project and s.name != before and not s.is_closed
        ]
        assert targets, f"no other open status in the project of task {item.id} (now {before!r})"
        target = targets[0]
        world.change("task", item.id, status=target.id)
        page.wait_for_timeout(6000)  # a poll of the status card or two: the Taiga cards keep their data
        expect(status).to_have_text(before)
        body = json.dumps({"action": "change", "type": "task", "data": {"id": item.id}}).encode()
        signature = hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha1).hexdigest()
        answer = requests.post(
            f"{pushed_portal}/hooks/taiga",
            data=body,
            headers={"Content-Type": "application/json", "X-TAIGA-WEBHOOK-SIGNATURE": signature},
            timeout=10,
        )
        assert answer.status_code == 204
        # Within seconds (the next answer of any card tells the page), not at the card's 5 minutes.
        expect(status).to_have_text(target.name, timeout=15_000)
    finally:
        context.close()


def test_a_change_whose_board_comes_late_asks_again_soon_and_keeps_its_notice_meanwhile(
    browser: Browser, pushed_portal: str, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """Taiga slow to give the board read anew after a change (0.5 s a call, several calls): the
    change's answer shows the card's items with the change, not yet fresh, and asks again soon
    rather than at the card's period (five minutes here); the answer that brings the fresh board
    keeps the change's notice in its item's row, and the keyboard's focus where it was."""
    server, world = tracker
    context, page = _camille_at(browser, pushed_portal)
    try:
        uid = f"tasks-task-{_task(world, 'Relire la politique').id}"
        choice = _open_status_of(page, uid, timeout=15_000)
        notice = page.locator(f'#widget-tasks [data-key="{uid}"] .card-notice')
        content = page.locator("#widget-tasks .widget-content")
        server.latency = 0.5
        try:
            _open_menu_by_keyboard(page, uid, choice)
            page.keyboard.press("Enter")
            expect(notice).to_contain_text(f"is now {choice}", timeout=15_000)
            assert content.get_attribute("data-poll") == "soon", content.get_attribute("class")
            fresh = page.locator("#widget-tasks .widget-content.is-ok:not([data-poll])")
            try:
                expect(fresh).to_be_attached(timeout=20_000)
            except AssertionError as error:
                raise AssertionError(page.evaluate(POLL_STATE, "widget-tasks")) from error
        finally:
            server.latency = 0.0
        expect(notice).to_contain_text(f"is now {choice}")  # still there, in its item's row
        assert notice.count() == 1
        expect(page.locator(f"#{uid}-status")).to_contain_text(choice)
        assert page.evaluate(FOCUSED_ID) == f"{uid}-status"
    finally:
        context.close()


def test_a_status_changed_in_one_browser_shows_in_another_without_waiting_for_its_poll(
    browser: Browser, pushed_portal: str
) -> None:
    """The portal tells every open page of its own writes as of Taiga's webhook: the other
    browser (the Taiga cards polling every 5 minutes here) shows the change within seconds."""
    contexts, pages = zip(*(_camille_at(browser, pushed_portal) for _ in range(2)), strict=True)
    try:
        for page in pages:
            expect(page.locator("#widget-tasks .task-row").first).to_be_visible(timeout=15_000)
        here, there = pages
        uid = here.locator("#widget-tasks .task-row").first.get_attribute("data-key")
        option = here.locator(f"#{uid}-menu .status-menu__option:not([aria-disabled])").first
        expect(option).to_be_attached()
        here.locator(f"#{uid}-status").click()
        chosen = (option.text_content() or "").strip()
        option.click()
        expect(here.locator(f"#{uid}-status")).to_contain_text(chosen)
        expect(there.locator(f"#{uid}-status")).to_contain_text(chosen, timeout=15_000)
    finally:
        for context in contexts:
            context.close()


def test_a_status_change_is_said_and_stays_on_the_card_until_its_own_next_turn(
    browser: Browser, pushed_portal: str, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """The change's outcome is said through the card's live region (a notice that arrives already
    written is not read by every screen reader), and stays on the card: the answer that brought
    it is the freshest the card can be. The page's clock stands still but when the test moves
    it: the deadlines card, of the same tool, polls at once; the tasks card does not poll again
    when the status card's next answer tells the page of that same change (it did, and the
    notice went within seconds of the change)."""
    _, world = tracker
    context, page = _camille_at(browser, pushed_portal, stopped_clock=True)
    try:
        uid = f"tasks-task-{_task(world, 'Nettoyer les anciennes').id}"
        chosen = _open_status_of(page, uid, timeout=15_000)
        page.clock.pause_at(page.evaluate("() => Date.now()") + 50)
        asked: list[tuple[str, str]] = []
        page.on("request", lambda r: asked.append((r.method, r.url.split("/widgets/")[-1].split("?")[0])))
        _open_menu_by_keyboard(page, uid, chosen)
        page.keyboard.press("Enter")
        notice = page.locator("#widget-tasks .card-notice")
        expect(notice).to_contain_text(f"is now {chosen}")
        said = page.locator("#widget-tasks [data-live-region]").inner_text()
        assert said.startswith((notice.text_content() or "").strip()), said
        assert notice.get_attribute("role") is None  # said once, by the region
        for _ in range(50):  # the answer's own news: no clock moved for it
            if ("GET", "deadlines") in asked:
                break
            page.wait_for_timeout(100)
        assert ("GET", "deadlines") in asked, asked
        answered: list[str] = []
        page.on("response", lambda r: answered.append(r.url.split("/widgets/")[-1]))
        page.clock.run_for(6000)  # the status card's turn: its answer tells of the change too
        for _ in range(50):
            if "status" in answered:
                break
            page.wait_for_timeout(100)
        assert "status" in answered, asked
        page.clock.run_for(500)
        page.wait_for_timeout(500)  # a poll it would start is on its way by now
        assert ("GET", "tasks") not in asked, asked
        expect(notice).to_contain_text(f"is now {chosen}")
    finally:
        context.close()


def test_the_month_moves_through_htmx_and_stays_on_the_next_poll(page_of: Any) -> None:
    page = page_of()
    title = page.locator("#deadlines-month")
    first = title.inner_text()
    page.locator("#deadlines-next").click()
    expect(title).not_to_have_text(first)
    moved = title.inner_text()
    page.evaluate("() => htmx.trigger(document.getElementById('widget-deadlines-body'), 'poll')")
    page.wait_for_timeout(500)
    page.wait_for_function(SETTLED)
    assert title.inner_text() == moved  # the poll asked for the month shown
    page.locator("#deadlines-today").click()
    expect(title).to_have_text(first)


def test_the_months_arrows_stay_where_they_are_so_two_clicks_go_two_months_on(page_of: Any) -> None:
    page = page_of()
    title = page.locator("#deadlines-month")
    first = title.inner_text()
    arrow = page.locator("#deadlines-next")
    arrow.scroll_into_view_if_needed()
    before = arrow.bounding_box()
    arrow.click()
    expect(page.locator("#deadlines-today")).to_be_visible()  # away from this month
    after = page.locator("#deadlines-next").bounding_box()
    assert before and after and abs(after["x"] - before["x"]) < 1, (before, after)
    second = title.inner_text()
    page.mouse.click(before["x"] + before["width"] / 2, before["y"] + before["height"] / 2)
    expect(title).not_to_have_text(second)
    assert title.inner_text() != first  # two months on, not back
    # "This month" from the keyboard: the month comes back and the focus stays in the card.
    page.locator("#deadlines-today").focus()
    page.keyboard.press("Enter")
    expect(title).to_have_text(first)
    expect(page.locator("#deadlines-today")).to_have_count(0)
    assert page.evaluate("() => document.activeElement.id") == "deadlines-next"


def test_a_month_that_gets_no_answer_is_said_and_the_next_click_moves_it(page_of: Any) -> None:
    lost = ("htmx:afterRequest", "htmx:sendError", "Failed to load resource")
    page = page_of(allow=tuple(re.escape(line) for line in lost))
    title = page.locator("#deadlines-month")
    shown = title.inner_text()
    note = page.locator("#widget-deadlines [data-choice-note]")

    def lost_if_asked_by_the_button(route: Route) -> None:  # the card's own polls go through
        if route.request.headers.get("hx-trigger") == "deadlines-next":
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/widgets/deadlines?*", lost_if_asked_by_the_button)
    page.locator("#deadlines-next").click()
    expect(note).to_have_text("The portal did not answer: try again in a moment.")
    assert title.inner_text() == shown
    page.unroute("**/widgets/deadlines?*")
    page.locator("#deadlines-next").click()
    expect(title).not_to_have_text(shown)
    expect(note).to_be_hidden()


def test_the_calendar_feed_from_the_keyboard_keeps_the_focus_in_its_panel(page_of: Any) -> None:
    """The feed's panel is swapped whole by its own buttons: the focus goes to what the panel
    now says (read out), and Tab carries on inside the panel, not from the top of the page."""
    page = page_of(user="dominique")
    toggle = page.locator("#widget-deadlines .feed-panel__toggle")
    toggle.focus()
    page.keyboard.press("Enter")  # opens the panel, which loads itself
    renew = page.locator("#deadlines-feed button[hx-post$='/renew']")
    expect(renew).to_be_visible()
    for said in ("Your feed address is ready", "Your feed has a new address"):
        if said.endswith("new address"):  # ending the current address asks once more, in place
            ask = page.locator("#deadlines-feed summary", has_text="New address")
            ask.focus()
            page.keyboard.press("Enter")
            expect(page.locator("#deadlines-feed")).to_contain_text("will stop working")
        renew.focus()
        page.keyboard.press("Enter")
        notice = page.locator("#deadlines-feed .card-notice")
        expect(notice).to_contain_text(said)
        expect(notice).to_be_focused()
        page.keyboard.press("Tab")
        inside = "() => document.getElementById('deadlines-feed').contains(document.activeElement)"
        assert page.evaluate(inside), page.evaluate("() => document.activeElement.outerHTML")
    switch_off = page.locator("#deadlines-feed button[hx-post$='/revoke']")
    expect(switch_off).to_be_hidden()  # not at one press: it asks first
    page.locator("#deadlines-feed summary", has_text="Switch off").click()
    switch_off.click()  # as the other tests found it
    expect(page.locator("#deadlines-feed .card-notice")).to_contain_text("switched off")


def test_the_calendar_feed_stays_in_its_panel_when_the_card_changes(page_of: Any) -> None:
    """The panel loads itself once, when opened. Another month (or any change of the card's
    data) merges the card's new body into the page: the panel keeps what it loaded, rather than
    the placeholder of the card's answer ("Loading…", for good: nothing would load it again)."""
    page = page_of()
    page.locator("#widget-deadlines .feed-panel__toggle").click()
    panel = page.locator("#widget-deadlines .feed-panel__body")
    expect(panel.locator("#deadlines-feed")).to_be_visible()
    month = page.locator("#deadlines-month")
    shown = month.inner_text()
    page.locator("#deadlines-next").click()
    expect(month).not_to_have_text(shown)
    expect(panel.locator("#deadlines-feed")).to_be_visible()
    expect(panel).not_to_contain_text("Loading")


def test_a_feed_panel_that_gets_no_answer_offers_to_ask_again(page_of: Any) -> None:
    lost = ("htmx:afterRequest", "htmx:sendError", "Failed to load resource")
    page = page_of(allow=tuple(re.escape(line) for line in lost))
    page.route("**/widgets/deadlines/feed", lambda route: route.abort("connectionreset"))
    page.locator("#widget-deadlines .feed-panel__toggle").click()
    again = page.locator("#widget-deadlines .feed-panel__body button", has_text="Try again")
    expect(again).to_be_visible()
    expect(page.locator("#widget-deadlines [data-choice-note]")).to_contain_text("The portal did not answer")
    page.unroute("**/widgets/deadlines/feed")
    again.click()
    expect(page.locator("#widget-deadlines #deadlines-feed")).to_be_visible()
    expect(page.locator("#widget-deadlines [data-choice-note]")).to_be_hidden()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_on_the_taiga_cards(page_of: Any, scheme: str) -> None:
    page = page_of(scheme=scheme)
    page.locator("#widget-tasks details.status-menu summary").first.click()  # an open status menu too
    result = run_axe(page)
    assert not result["violations"], describe_violations(result["violations"])


def test_a_poll_says_when_its_data_was_fetched_and_a_new_filter_does_not(page_of: Any) -> None:
    """Each worker of a pod without Redis caches on its own: a poll tells when the data on
    screen was fetched, so that a worker holding older data lets the card keep it. A poll that
    asks for something else (a filter just changed) must get its answer: it does not say it."""
    page = page_of()
    sent: list[dict[str, str]] = []
    answered: list[str | None] = []
    page.on("request", lambda r: "/widgets/tasks" in r.url and sent.append(r.headers))
    page.on(
        "response",
        lambda r: "/widgets/tasks" in r.url and answered.append(r.headers.get("x-widget-fetched-at")),
    )

    def poll() -> dict[str, str]:
        before = len(sent)
        page.evaluate("() => htmx.trigger(document.getElementById('widget-tasks-body'), 'poll')")
        page.wait_for_function(SETTLED)
        for _ in range(50):  # the request's and the answer's events reach this side a moment later
            if len(sent) > before and len(answered) == len(sent):
                break
            page.wait_for_timeout(100)
        assert len(sent) > before and len(answered) == len(sent)  # (the card's own poll may come too)
        return sent[-1]

    first = poll()
    assert first.get("x-widget-version") and first.get("x-widget-fetched-at")
    again = poll()
    assert again["x-widget-fetched-at"] == answered[-2]  # the time of the data on screen
    before = len(sent)
    page.locator("#widget-tasks input[name=blocked]").check()
    expect(page.locator("#widget-tasks .task-row")).to_have_count(1)
    page.wait_for_function(SETTLED)
    filtered = sent[before]
    assert filtered.get("x-widget-version") and "x-widget-fetched-at" not in filtered
    assert "blocked=1" in page.evaluate(
        "() => performance.getEntriesByType('resource').map((e) => e.name).join(' ')"
    )
    assert poll().get("x-widget-fetched-at")  # the filtered card is now the one on screen


def test_sort_and_filter_from_the_card(page_of: Any) -> None:
    page = page_of()
    page.locator("#widget-tasks input[name=blocked]").check()
    expect(page.locator("#widget-tasks .task-row")).to_have_count(1)
    page.locator("#widget-tasks input[name=blocked]").uncheck()
    page.locator("#widget-tasks select[name=sort]").select_option("project")
    # the card comes back from the server sorted (its option marked selected in the new body)
    expect(page.locator("#widget-tasks option[value=project]")).to_have_attribute("selected", "")
    page.wait_for_function(SETTLED)
    projects = page.locator("#widget-tasks .task-row__project").all_inner_texts()
    assert projects == sorted(projects, key=str.casefold)
    assert re.search(r"\d", page.locator("#widget-tasks .tasks-controls__count").first.inner_text())


def test_a_filter_says_how_many_items_it_shows(page_of: Any) -> None:
    """A filter changed the list without a word to a screen reader (the card's summary, its
    overdue and due-soon counts, stays the same): the card's live region says what it shows."""
    page = page_of()
    region = page.locator("#widget-tasks [data-live-region]")
    page.locator("#widget-tasks input[name=blocked]").check()
    expect(page.locator("#widget-tasks .task-row")).to_have_count(1)
    expect(region).to_have_text("1 item shown")
    page.locator("#widget-tasks input[name=blocked]").uncheck()
    expect(region).to_have_text(re.compile(r"^\d+ items shown$"))
    page.wait_for_function(SETTLED)
    assert region.inner_text() == f"{page.locator('#widget-tasks .task-row').count()} items shown"


def test_the_current_status_is_reached_by_the_keyboard_and_sends_nothing(page_of: Any) -> None:
    """The current status was a disabled button: Tab skipped it, and a screen reader user never
    heard which status was the current one in the menu. It is reached now, said current and
    unavailable, and pressing it sends nothing."""
    page = page_of()
    uid = page.locator("#widget-tasks .task-row").first.get_attribute("data-key")
    current = page.locator(f"#{uid}-menu .status-menu__option[aria-current='true']")
    expect(current).to_have_attribute("aria-disabled", "true")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    _open_menu_by_keyboard(page, uid, (current.text_content() or "").strip())
    page.keyboard.press("Enter")
    page.keyboard.press("Space")
    page.wait_for_timeout(500)
    assert sent == [] and page.locator("#widget-tasks .card-notice").count() == 0
    assert page.locator(f"#{uid}-menu").evaluate("(m) => m.open")  # nothing done: the menu stays


def _kept_sort(page: Page, sort: str) -> bool:
    """Whether the portal gives the person's tasks card in this `sort` (with the page's session),
    within ten seconds."""
    for _ in range(50):
        if re.search(rf'<option value="{sort}" selected>', page.request.get("/widgets/tasks").text()):
            return True
        page.wait_for_timeout(200)
    return False


def test_a_sort_chosen_just_before_leaving_the_page_is_kept(page_of: Any) -> None:
    """A kept choice is saved a second after its last change (once for a sort browsed with the
    arrow keys): leaving the page in that second must not lose it."""
    page = page_of()
    select = page.locator("#widget-tasks select[name=sort]")
    before = select.input_value()
    chosen = "modified" if before != "modified" else "due"
    select.select_option(chosen)
    page.goto("about:blank")  # at once: htmx's save, a second later, would never go
    assert _kept_sort(page, chosen)
    page = page_of()  # and the next page shows it
    expect(page.locator(f"#widget-tasks option[value={chosen}]")).to_have_attribute("selected", "")
    page.locator("#widget-tasks select[name=sort]").select_option(before)  # as other tests found it
    assert _kept_sort(page, before)


# For each blocked note holding code, whether the text just after each code span (its closing
# ")") is on the code's line.
PUNCTUATION_ON_CODES_LINE = """(card) => [...card.querySelectorAll(".task-row__note code")].map((code) => {
  const after = code.nextSibling;
  if (!after || after.nodeType !== Node.TEXT_NODE || !after.length) return true;
  const range = document.createRange();
  range.setStart(after, 0);
  range.setEnd(after, 1);
  return Math.abs(range.getBoundingClientRect().top - code.getBoundingClientRect().top) < 4;
})"""


def test_a_blocked_notes_code_keeps_its_closing_parenthesis_on_its_line(page_of: Any) -> None:
    """A short code span is drawn whole (inline-block), and a line could break between it and
    the ")" that closes it: "(change-1432" then ")" alone on the next line, in French at 1440 px."""
    page = page_of(language="fr", width=1440)
    seen = 0
    for width in (1440, 1366, 1280, 1024, 820, 390):
        page.set_viewport_size({"width": width, "height": 1000})
        placed(page)
        kept = page.locator("#widget-tasks").evaluate(PUNCTUATION_ON_CODES_LINE)
        assert all(kept), (width, kept)
        seen += len(kept)
    assert seen >= 6  # the demo's note "(`change-1432`)" at each width


def test_an_item_closed_in_taiga_by_someone_else_leaves_the_focus_on_the_next_item(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A keyboard user on a task's link while a colleague closes that task in Taiga: at the
    card's next poll the row goes, and the focus went with it to the page's body (a screen reader
    starts again from the top of the page). It goes to the next task's link instead."""
    _, world = tracker
    page = page_of()
    rows = page.locator("#widget-tasks .task-row")
    keys = rows.evaluate_all("(rows) => rows.map((r) => [r.dataset.key, r.querySelector('bdi').textContent])")
    uid, _ = keys[0]  # the first row: camille's overdue issue since issues are read, any kind will do
    following = keys[1][0]
    kind, item_id = uid.removeprefix("tasks-").split("-")
    item = world.items[kind][int(item_id)]
    was = item.status
    closed = next(s for s in world.statuses[kind].values() if s.project == item.project and s.is_closed)
    page.locator(f"#{uid}-link").focus()
    world.change(kind, item.id, status=closed.id)
    try:
        expect(page.locator(f"#{uid}-link")).to_have_count(0, timeout=15_000)  # the card's next poll
        page.wait_for_function(SETTLED)
        assert page.evaluate(FOCUSED_ID) == f"{following}-link"
    finally:
        world.change(kind, item.id, status=was)
        # Back on the card, so the shared board the next tests read holds it open again (the
        # calendar's test, next, found no overdue day: it read the board of this test).
        expect(page.locator(f"#{uid}-link")).to_have_count(1, timeout=15_000)


def _calendar_with_overdue_days(page: Page) -> None:
    """On the first day or two of a month its grid may not reach back to camille's overdue
    days (two and three days ago): then the previous month is shown."""
    title = page.locator("#deadlines-month")
    expect(page.locator("#widget-deadlines td.day").first).to_be_attached()
    if page.locator("#widget-deadlines td.day.is-overdue").count() == 0:
        shown = title.inner_text()
        page.locator("#deadlines-previous").click()
        expect(title).not_to_have_text(shown)


def test_the_calendar_says_in_words_which_deadlines_are_overdue(page_of: Any) -> None:
    """A day's marks say by colour alone that its task is overdue or due soon; what screen
    readers heard of the day named the task only."""
    page = page_of(language="fr")
    _calendar_with_overdue_days(page)
    overdue = page.locator("#widget-deadlines td.day.is-overdue .is-sr-only").first
    expect(overdue).to_contain_text(", en retard")


@pytest.mark.parametrize("width", [1280, 390])
def test_a_day_of_the_calendar_opens_its_deadlines_by_touch_or_keyboard(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld], width: int
) -> None:
    """A day's marks named its items only in a tooltip (a mouse resting on them): a phone or a
    keyboard could not learn what a mark past the list's days was. The day opens its details."""
    _, world = tracker
    page = page_of(language="fr", width=width, height=844 if width < 500 else 1000)
    _calendar_with_overdue_days(page)
    day = page.locator("#widget-deadlines td.day.is-overdue .day__open").first
    key = day.get_attribute("popovertarget")
    details = page.locator(f"#{key}")
    expect(details).to_be_hidden()
    day.click()
    expect(details).to_be_visible()
    assert details.get_attribute("role") == "dialog"
    expect(details.locator(".day-details__title")).not_to_be_empty()
    expect(details.locator(".upcoming__row.is-overdue .upcoming__link").first).to_be_visible()
    expect(details.locator(".due-badge")).to_contain_text(["En retard"])
    box = details.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, box  # inside the screen
    # The card refreshes with another deadline while the details are open: they stay open.
    camille = next(u for u in world.users.values() if u.username == "camille")
    project = next(p for p in world.projects.values() if camille.id in p.members)
    item = world.add_item("task", project, "Une échéance arrivée pendant la lecture", "New", camille, due=5)
    try:
        expect(page.locator(f"#tasks-task-{item.id}-link")).to_have_count(1, timeout=15_000)
        expect(page.locator("#widget-deadlines")).to_contain_text("Une échéance arrivée", timeout=15_000)
        expect(details).to_be_visible()
    finally:
        closed = next(s for s in world.statuses["task"].values() if s.project == project.id and s.is_closed)
        world.change("task", item.id, status=closed.id)
    page.keyboard.press("Escape")
    expect(details).to_be_hidden()
    assert page.evaluate("() => document.activeElement.getAttribute('popovertarget')") == key
    page.keyboard.press("Enter")  # from the keyboard
    expect(details).to_be_visible()
    details.locator(".day-details__close").click()
    expect(details).to_be_hidden()


# The calendar's day buttons: which one Tab stops at, and which has the focus.
DAY_STOPS = """() => {
  const days = [...document.querySelectorAll("#widget-deadlines .month__grid .day__open")];
  return { stops: days.filter((d) => d.tabIndex === 0).map((d) => d.getAttribute("popovertarget")),
           focused: document.activeElement.getAttribute("popovertarget"),
           all: days.map((d) => d.getAttribute("popovertarget")) };
}"""


def test_tab_stops_once_in_the_calendar_and_the_arrows_go_from_day_to_day(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A dozen days with deadlines were a dozen Tab stops between the month's arrows and the
    list: one now, the arrows, Home and End go from day to day, and the day moved to stays the
    stop through the card's refreshes."""
    page = page_of(language="fr")
    days = page.evaluate(DAY_STOPS)
    assert len(days["all"]) >= 3 and days["stops"] == days["all"][:1], days
    page.locator("#deadlines-next").focus()
    page.keyboard.press("Tab")  # from the month's arrow: the calendar's one stop
    assert page.evaluate(DAY_STOPS)["focused"] == days["all"][0]
    page.keyboard.press("Tab")  # and on, past the other days
    assert page.evaluate("() => document.activeElement.closest('.month__grid')") is None
    page.locator(f".day__open[popovertarget='{days['all'][0]}']").focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate(DAY_STOPS)["focused"] == days["all"][1]
    page.keyboard.press("End")
    moved = page.evaluate(DAY_STOPS)
    assert moved["focused"] == days["all"][-1] and moved["stops"] == [days["all"][-1]], moved
    page.keyboard.press("Home")
    page.keyboard.press("ArrowLeft")  # nothing before the first
    assert page.evaluate(DAY_STOPS)["focused"] == days["all"][0]
    page.keyboard.press("ArrowDown")
    # A refresh with another deadline (the card's body merged anew): the stop stays where it was.
    _, world = tracker
    camille = next(u for u in world.users.values() if u.username == "camille")
    project = next(p for p in world.projects.values() if camille.id in p.members)
    item = world.add_item("task", project, "Une échéance de plus ce mois-ci", "New", camille, due=4)
    try:
        expect(page.locator("#widget-deadlines")).to_contain_text("Une échéance de plus", timeout=15_000)
        assert page.evaluate(DAY_STOPS)["stops"] == [days["all"][1]]
        page.keyboard.press("Enter")
        expect(page.locator(f"#{days['all'][1]}")).to_be_visible()
        page.keyboard.press("Escape")
    finally:
        closed = next(s for s in world.statuses["task"].values() if s.project == project.id and s.is_closed)
        world.change("task", item.id, status=closed.id)


def test_a_task_assigned_while_the_page_is_open_or_since_the_last_visit_says_added_until_seen(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """A task assigned to me while my dashboard is open was lit for two seconds among a dozen:
    anyone who looked away missed it. Its title says "Added" until I rest the pointer on it (or
    focus it); through polls and a filter that hides it for a while; nothing else says so, not
    even the rows a filter shows again."""
    _, world = tracker
    page = page_of(language="fr")
    camille = next(u for u in world.users.values() if u.username == "camille")
    project = next(p for p in world.projects.values() if camille.id in p.members)
    item = world.add_item("task", project, "Vérifier la rotation des sauvegardes Harbor", "New", camille)
    made = [item]  # closed at the end, so the next tests' cards do not hold them
    link = page.locator(f"#tasks-task-{item.id}-link")
    marked = page.locator("#widget-tasks [data-new]")
    try:
        expect(link).to_have_attribute("data-new", "Nouveau", timeout=15_000)  # at the card's next poll
        expect(marked).to_have_count(1)
        expect(page).to_have_title(re.compile(r"^\(1\) "))  # counted in the tab's title
        said = page.locator("#widget-tasks [data-live-region]")  # and said, once, with the card's words
        expect(said).to_contain_text("Nouvel élément\u00a0: Vérifier la rotation des sauvegardes Harbor")
        assert "Nouveau" in page.evaluate(
            "(el) => getComputedStyle(el, '::before').content", link.element_handle()
        )
        blocked = page.locator("#widget-tasks input[name=blocked]")
        blocked.check()
        expect(page.locator("#widget-tasks .task-row")).to_have_count(1)
        blocked.uncheck()
        expect(link).to_have_attribute("data-new", "Nouveau")  # still unseen, shown again
        expect(marked).to_have_count(1)  # the rows the filter showed again are not new
        page.evaluate(
            "() => { document.querySelector('#widget-tasks [data-live-region]').textContent = ''; }"
        )
        page.wait_for_timeout(6000)  # a poll or two
        expect(link).to_have_attribute("data-new", "Nouveau")
        expect(said).to_have_text("")  # not said again
        page.mouse.move(0, 0)
        link.hover()
        expect(link).not_to_have_attribute("data-new", re.compile(".*"), timeout=5_000)  # seen
        expect(page).not_to_have_title(re.compile(r"^\("))
        page.mouse.move(0, 0)
        page.wait_for_timeout(6000)
        expect(marked).to_have_count(0)  # and not again at the next polls
        # Away from the dashboard (the evening), a task is assigned; back (the morning): it says
        # so, and still does after a reload until seen; the one seen yesterday does not.
        page.goto("about:blank")
        overnight = world.add_item(
            "task", project, "Purger les journaux d’audit de plus d’un an", "New", camille
        )
        made.append(overnight)
        page.goto("/")
        page.wait_for_function(SETTLED)
        later = page.locator(f"#tasks-task-{overnight.id}-link")
        expect(later).to_have_attribute("data-new", "Nouveau", timeout=15_000)
        expect(marked).to_have_count(1)
        page.reload()
        page.wait_for_function(SETTLED)
        expect(later).to_have_attribute("data-new", "Nouveau", timeout=15_000)
        expect(marked).to_have_count(1)
    finally:
        for added in made:
            closed = next(
                s for s in world.statuses["task"].values() if s.project == project.id and s.is_closed
            )
            world.change("task", added.id, status=closed.id)
            expect(page.locator(f"#tasks-task-{added.id}-link")).to_have_count(0, timeout=15_000)


def test_a_row_seen_in_one_tab_is_no_longer_added_in_another(
    page_of: Any, tracker: tuple[SimServer, TaigaWorld]
) -> None:
    """The dashboard open in two tabs of one browser: a task assigned meanwhile says "Added" in
    both; seen in one, it no longer does in the other (nor after a reload there)."""
    _, world = tracker
    first = page_of()
    second = first.context.new_page()
    second.goto("/")
    second.wait_for_function(SETTLED)
    second.wait_for_selector("#widget-tasks .task-row")
    camille = next(u for u in world.users.values() if u.username == "camille")
    project = next(p for p in world.projects.values() if camille.id in p.members)
    item = world.add_item("task", project, "Relire la procédure de restauration de Vault", "New", camille)
    try:
        links = [page.locator(f"#tasks-task-{item.id}-link") for page in (first, second)]
        for link in links:
            expect(link).to_have_attribute("data-new", "Added", timeout=15_000)
        first.bring_to_front()
        links[0].focus()  # seen here
        expect(links[0]).not_to_have_attribute("data-new", re.compile(".*"))
        expect(links[1]).not_to_have_attribute("data-new", re.compile(".*"), timeout=5_000)
        second.reload()
        second.wait_for_function(SETTLED)
        expect(links[1]).to_have_count(1, timeout=15_000)
        expect(second.locator("#widget-tasks [data-new]")).to_have_count(0)
    finally:
        closed = next(s for s in world.statuses["task"].values() if s.project == project.id and s.is_closed)
        world.change("task", item.id, status=closed.id)
        expect(first.locator(f"#tasks-task-{item.id}-link")).to_have_count(0, timeout=15_000)
