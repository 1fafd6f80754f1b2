"""A first visit: every card packed as a skeleton (one height each), then placed again as their
data replaces the skeletons, until the person starts to use the page.

The portal here keeps every card's data fresh for one second only, so that a page opened a
little later finds nothing to draw with it: each card starts as its skeleton, as on the first
visit of the day."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, Route

from .conftest import Portal, served_portal
from .helpers import SETTLED, OpenPage, placed
from .test_page import CARD_BOXES, _holes

TTL = 1  # seconds each card's data is fresh here

# Each card's place in the grid (column and row), by id.
CARD_PLACES = """() => Object.fromEntries([...document.querySelectorAll("#widget-grid > .widget-card")]
  .map((c) => [c.id, `${c.style.gridColumn} ${c.style.gridRow}`]))"""
SKELETONS = "() => document.querySelectorAll('#widget-grid .widget-skeleton').length"


@pytest.fixture(scope="module")
def portal(
    every_card_config: Callable[..., dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    """Every card on the simulators, each fresh for TTL only."""
    config = every_card_config(monitoring_ttl=TTL)
    for section in config["widgets"].values():
        section["ttl"] = TTL
    with served_portal(config, tmp_path_factory.mktemp("portal-first-visit")) as found:
        yield found


def _first_visit(open_page: OpenPage, language: str, width: int) -> tuple[Page, list[Route], list[bool]]:
    """A page in a fresh browser, every card's first answer held back (`held`) while
    `holding[0]`: returned once the six skeletons are packed and their polls caught."""
    time.sleep(TTL + 0.3)  # what an earlier test fetched has expired
    held: list[Route] = []
    holding = [True]

    def hold(page: Page) -> None:
        page.route(
            "**/widgets/*",  # the cards, not the menu's profile (widgets/pipelines/me)
            lambda route: held.append(route) if holding[0] else route.continue_(),
        )

    page = open_page("/", language=language, width=width, height=900, settle=False, before=hold)
    page.wait_for_function("() => document.querySelector('#widget-grid.is-shown')")
    assert page.evaluate(SKELETONS) == 6
    for _ in range(100):  # the route's callbacks run while the driver waits
        if len(held) >= 6:
            break
        page.wait_for_timeout(100)
    assert len(held) == 6, [route.request.url for route in held]
    return page, held, holding


def _release(held: list[Route], holding: list[bool], keep: str = "") -> list[Route]:
    """Lets every held answer through (but those whose URL holds `keep`); returns those kept."""
    holding[0] = False
    kept = [route for route in held if keep and keep in route.request.url]
    for route in held:
        if route not in kept:
            route.continue_()
    return kept


@pytest.mark.parametrize(("language", "width"), [("en", 1280), ("fr", 1440), ("fr", 1920)])
def test_a_first_visit_ends_with_the_places_all_the_heights_give(
    open_page: OpenPage, language: str, width: int
) -> None:
    """The places the skeletons got are not kept once the data comes: the page ends as a reload
    would place it, without a hole (the French demo at 1440 px kept the pipelines card beside the
    metrics, as if both were as short as their skeletons: 330 px left empty under the metrics)."""
    page, held, holding = _first_visit(open_page, language, width)
    _release(held, holding)
    page.wait_for_function(SETTLED)
    holding[0] = True  # the cards' next polls wait: no data moves a height while this compares
    placed(page)
    layout = page.evaluate(CARD_BOXES)
    assert not _holes(layout), layout
    settled = page.evaluate(CARD_PLACES)
    # Every card placed afresh with every height known (a narrower window and back):
    page.set_viewport_size({"width": 700, "height": 900})
    placed(page)
    page.set_viewport_size({"width": width, "height": 900})
    placed(page)
    # The same columns, each with the same cards in the same order (a relative time the page
    # rewrote meanwhile, a line longer, moves the rows under it down, not the arrangement).
    assert _arrangement(page.evaluate(CARD_PLACES)) == _arrangement(settled)


def _arrangement(places: dict[str, str]) -> dict[int, list[str]]:
    """{column: the cards in it, top to bottom} of places such as '3 / span 1 442 / span 356'."""
    columns: dict[int, list[tuple[int, str]]] = {}
    for card, place in places.items():
        column, _, span, row, *_ = place.replace("/", " ").split()
        for at in range(int(column), int(column) + int(span)):
            columns.setdefault(at, []).append((int(row), card))
    return {column: [card for _, card in sorted(cards)] for column, cards in sorted(columns.items())}


def test_once_the_person_has_scrolled_a_late_card_moves_no_other_card_sideways(open_page: OpenPage) -> None:
    page, held, holding = _first_visit(open_page, "fr", 1440)
    late = _release(held, holding, keep="/widgets/tasks")
    page.wait_for_function(f"() => ({SKELETONS})() === 1")
    placed(page)
    page.mouse.wheel(0, 200)  # the person has started reading
    page.wait_for_function("() => scrollY > 0")
    before = page.evaluate(CARD_PLACES)
    columns = {card: place.split(" ")[0:3] for card, place in before.items()}
    for route in late:
        route.continue_()
    page.wait_for_function(SETTLED)
    placed(page)
    after = page.evaluate(CARD_PLACES)
    # Each card keeps its columns; those below the tasks card may move down as it grows.
    assert {card: place.split(" ")[0:3] for card, place in after.items()} == columns
