"""The pipelines card in a browser: its two tabs from the keyboard, and a refresh that keeps the tab."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from simulators.base import SimServer
from simulators.gitlab import GitLabWorld, SimMergeRequest

from .conftest import PIPELINES_TTL
from .helpers import ANIMATIONS_DONE, OpenPage

STATE = """() => ({
  focused: document.activeElement && document.activeElement.id,
  selected: [...document.querySelectorAll('#widget-pipelines [role=tab]')]
    .filter((t) => t.getAttribute('aria-selected') === 'true').map((t) => t.id),
  inTabOrder: [...document.querySelectorAll('#widget-pipelines [role=tab]')].filter((t) => t.tabIndex === 0)
    .map((t) => t.id),
  shown: [...document.querySelectorAll('#widget-pipelines [role=tabpanel]')].filter((p) => !p.hidden)
    .map((p) => p.id),
})"""


@pytest.fixture
def gitlab_world(gitlab_server: SimServer) -> Iterator[GitLabWorld]:
    world: GitLabWorld = gitlab_server.world  # type: ignore[attr-defined]
    saved = dict(world.merge_requests)
    yield world
    world.merge_requests.clear()
    world.merge_requests.update(saved)


def _state(page: Page) -> dict[str, object]:
    page.evaluate(ANIMATIONS_DONE)
    found: dict[str, object] = page.evaluate(STATE)
    return found


def _on(tab: str) -> dict[str, object]:
    return {
        "focused": f"pipelines-tab-{tab}",
        "selected": [f"pipelines-tab-{tab}"],
        "inTabOrder": [f"pipelines-tab-{tab}"],
        "shown": [f"pipelines-panel-{tab}"],
    }


def test_the_tabs_work_from_the_keyboard_and_survive_a_refresh(
    open_page: OpenPage, gitlab_world: GitLabWorld
) -> None:
    page = open_page("/")
    page.wait_for_selector("#pipelines-tab-projects")
    for _ in range(160):  # Tab reaches the selected tab; the other one is not in the Tab order
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement.id")
        assert focused != "pipelines-tab-mine"
        if focused == "pipelines-tab-projects":
            break
    assert _state(page) == _on("projects")
    assert page.locator("#pipelines-tab-projects").evaluate("(el) => el.matches(':focus-visible')")

    page.keyboard.press("ArrowRight")
    assert _state(page) == _on("mine")
    assert page.get_by_text("Merge requests waiting for me").is_visible()
    assert page.get_by_text("Cache Redis partagé entre les réplicas").is_visible()
    page.keyboard.press("ArrowRight")  # past the last tab: back to the first
    assert _state(page) == _on("projects")
    page.keyboard.press("End")
    assert _state(page) == _on("mine")
    page.keyboard.press("Home")
    assert _state(page) == _on("projects")
    page.keyboard.press("ArrowLeft")
    assert _state(page) == _on("mine")

    # A new review waits: the card refreshes with it, on the tab the user chose, focus kept.
    gitlab_world.add_merge_request(
        SimMergeRequest(4242, 77, 101, "Revue arrivée pendant la lecture", "alex", "late", ["camille"])
    )
    page.wait_for_timeout(PIPELINES_TTL * 1000 + 200)
    page.evaluate("() => htmx.trigger('#widget-pipelines-body', 'poll')")
    page.locator("#mr-4242").wait_for(state="visible", timeout=15_000)
    assert _state(page) == _on("mine")
    assert page.locator("#pipelines-tab-mine .pipeline-tab__count").inner_text() == "4 for you"
    # It says so until seen (lit for two seconds only, it was missed by whoever looked away).
    assert page.locator("#mr-4242").get_attribute("data-new") == "Added"
    assert page.locator("#widget-pipelines [data-new]").count() == 1
    assert page.locator("#pipelines-tab-mine").get_attribute("data-has-new") == ""  # its tab has a dot
    assert page.locator("#pipelines-tab-projects").get_attribute("data-has-new") is None
    said = page.locator("#widget-pipelines [data-live-region]").inner_text()
    assert "Added: Revue arrivée pendant la lecture" in said, said

    page.keyboard.press("Tab")  # from the tab into its panel: the first merge request's link
    assert (
        page.evaluate("() => document.activeElement.closest('[role=tabpanel]').id") == "pipelines-panel-mine"
    )


def test_the_user_menu_shows_the_gitlab_avatar_from_the_portal(open_page: OpenPage) -> None:
    page = open_page("/")
    page.click("#user-menu summary")
    link = page.locator(".user-menu__gitlab")
    link.wait_for(state="visible")
    assert link.get_attribute("href", timeout=5000) is not None and link.get_attribute(
        "href", timeout=5000
    ).endswith("/camille")  # type: ignore[union-attr]
    avatar = page.locator("#user-chip-avatar img")
    avatar.wait_for()
    assert avatar.get_attribute("src", timeout=5000).startswith("/widgets/pipelines/avatar?v=")  # type: ignore[union-attr]
    page.wait_for_function(  # loaded under the CSP (its download ends after the swap)
        "() => { const img = document.querySelector('#user-chip-avatar img');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )


# Each relative moment of the card: its text, and the text the server wrote (the date, for a page
# without its script); each duration under way, and whether it shows.
TIMES = """() => ({
  ago: [...document.querySelectorAll('#widget-pipelines time[data-ago]')]
    .map((node) => ({ text: node.textContent, server: node.title })),
  since: [...document.querySelectorAll('#widget-pipelines [data-since]')]
    .map((node) => ({ text: node.textContent, hidden: node.hidden })),
})"""


@pytest.mark.parametrize(
    ("language", "ago", "opened", "finished", "running"),
    [
        (
            "en",
            r"^(opened |finished )?(just now|\d+\s\S+\sago)$",
            "opened ",
            "finished ",
            "running for ",
        ),
        (
            "fr",
            r"^(ouverte |terminé )?(à l’instant|il y a \d+\s.+)$",
            "ouverte ",
            "terminé ",
            "en cours depuis ",
        ),
    ],
)
def test_times_are_written_by_the_page_and_stay_true_as_its_clock_moves(
    open_page: OpenPage, language: str, ago: str, opened: str, finished: str, running: str
) -> None:
    """The card's HTML carries moments (the same HTML all day); the page writes them relative to
    its clock, in its language, and again as the clock moves."""
    page = open_page("/", language=language, before=lambda p: p.clock.install())
    page.wait_for_selector("#widget-pipelines time[data-ago]", state="attached")
    before = page.evaluate(TIMES)
    assert before["ago"], "no time in the card"
    for moment in before["ago"]:
        assert re.match(ago, moment["text"]), moment
        assert moment["server"] not in moment["text"]  # written by the page, not the server's date
    assert any(moment["text"].startswith(opened) for moment in before["ago"])
    assert any(moment["text"].startswith(finished) for moment in before["ago"])  # when it ended
    page.clock.fast_forward("03:00:00")  # three hours on: the page's 30 s rewrite is due
    after = page.evaluate(TIMES)
    hours = [m["text"] for m in after["ago"] if re.search(r"\b3\s(hr|h)\b", m["text"])]
    # The minutes-old moments are three hours old now: the page's clock, which the portal never sees.
    assert hours, after
    # A pipeline under way says for how long once it has run a minute. (A poll may come in
    # meanwhile: its Date header puts the page's clock back on the portal's, where a pipeline
    # the simulator started seconds ago has not run a minute yet, and says nothing.)
    shown = [s for s in after["since"] if not s["hidden"]]
    assert shown and all(s["text"].startswith(running) for s in shown), after


# Each projects row's badge (what is seen of it) and the status word written in its details.
ROWS = """() => [...document.querySelectorAll('#pipelines-panel-projects .pipeline-row')].map((row) => {
  const word = row.querySelector('.pipeline-row__state');
  const badgeWord = row.querySelector('.pipeline-badge > span');
  return {
    status: row.className,
    badgeWordShown: badgeWord.getBoundingClientRect().width > 2,
    wordShown: word ? word.getBoundingClientRect().width > 0 : false,
    word: word ? word.textContent : null,
  };
})"""


@pytest.mark.parametrize("width", [390, 1440])
def test_on_a_phone_every_status_is_also_written(open_page: OpenPage, width: int) -> None:
    page = open_page("/", width=width, language="fr")
    rows = page.evaluate(ROWS)
    assert rows
    for row in rows:
        if width == 390:  # the badge keeps its icon alone, the details say the word
            assert not row["badgeWordShown"] and row["wordShown"], row
        else:  # the badge says it: not twice
            assert row["badgeWordShown"] and not row["wordShown"], row
    if width == 390:
        words = {row["word"] for row in rows}
        assert {"Manuel", "Réussi", "Échoué"} <= words, words
