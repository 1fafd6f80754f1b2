"""A card's own bug in a real browser: said in that card, while the page, its banner and the
other cards carry on as usual (tests.support.failing_app: two buggy cards beside the status card)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Request, expect

from simulators.base import SimServer

from .conftest import REFRESH, Portal, e2e_config, served_portal
from .helpers import OpenPage, PageProblems


@pytest.fixture(scope="module")
def portal(kuma_server: SimServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    directory = tmp_path_factory.mktemp("portal-failing")
    config = e2e_config(kuma_server, only=("status",))
    config["widgets"].update(buggy={"refresh": REFRESH}, smudged={"refresh": REFRESH})
    module = "tests.support.failing_app:app"
    with served_portal(config, directory, app_module=module, expected_errors=("card_failed",)) as found:
        records = found.log_records
        yield found
    failed = [r for r in records() if r.get("event") == "card_failed"]
    assert {r["widget"] for r in failed} == {"buggy", "smudged"}
    assert all(r["request_id"] and "Traceback" in r["exc_info"] for r in failed)


def test_a_card_that_cannot_be_drawn_says_so_and_nothing_else_breaks(
    open_page: OpenPage, problems: PageProblems
) -> None:
    # The browser itself reports each 500 in the console; nothing else may appear there.
    problems.allow_console(r"Failed to load resource: the server responded with a status of 500")
    polled: list[str] = []
    page = open_page("/", before=lambda p: p.on("request", lambda r: _note(polled, r)))
    for slug in ("buggy", "smudged"):
        card = page.locator(f"#widget-{slug}")
        expect(card).to_contain_text("This card could not be drawn")
        expect(card).to_contain_text("Reference for support:")
    expect(page.locator("#widget-status .status-row").first).to_be_visible()
    # Every card keeps polling at its interval: the failures did not take the portal for gone.
    # The same bug keeps its reference, so the card's text stays put.
    reference = page.locator("#widget-buggy .state-notice__hint").inner_text()
    before = polled.count("status"), polled.count("buggy")
    page.wait_for_timeout((REFRESH + 4) * 1000)
    assert polled.count("status") > before[0] and polled.count("buggy") > before[1], polled
    expect(page.locator("#portal-offline")).to_be_hidden()
    expect(page.locator("#widget-buggy")).to_contain_text("This card could not be drawn")
    assert page.locator("#widget-buggy .state-notice__hint").inner_text() == reference


def _note(polled: list[str], request: Request) -> None:
    if "/widgets/" in request.url:
        polled.append(request.url.rsplit("/", 1)[1])
