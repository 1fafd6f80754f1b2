"""A card's own bug stays in that card: the page is drawn, the other cards answer, and the
broken card says it could not be drawn, with the reference of the logged error."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from prometheus_client import generate_latest

from portal.web.security import CSP

from .support.failing_widgets import BUGGY, SMUDGED
from .support.layout_widgets import STATUS

EN = {"Accept-Language": "en"}


@pytest.fixture
def buggy_app(make_app: Callable[..., Flask]) -> Flask:
    def with_buggy_cards(config: dict[str, Any]) -> None:
        config["widgets"] = {"status": config["widgets"]["status"], "buggy": {}, "smudged": {}}

    return make_app(with_buggy_cards, TESTING=False, WIDGETS=(STATUS, BUGGY, SMUDGED))


def _failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "card_failed"]


def test_the_page_is_drawn_with_a_buggy_card_loading(
    buggy_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = buggy_app.test_client()
    client.get("/widgets/status", headers=EN)  # fresh data: the status card is drawn with it
    page = client.get("/", headers=EN)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    bodies = {
        slug: re.search(rf'id="widget-{slug}-body"(.*?)</div>\s*<p class="widget-card__kept"', html, re.S)
        for slug in ("buggy", "smudged")
    }
    buggy, smudged = (found.group(1) if found else "" for found in bodies.values())
    assert "widget-skeleton" in buggy  # its view cannot be built: it loads itself, and its poll says why
    assert "This card could not be drawn" in smudged  # not even its skeleton can be drawn
    assert 'hx-trigger="load, poll"' in smudged
    assert "SonarQube" in html  # the other card is drawn with its data
    failed = {r.widget: r for r in _failures(caplog)}  # type: ignore[attr-defined]
    assert failed.keys() == {"buggy", "smudged"}
    assert "on purpose" in str(failed["buggy"].exc_info[1])  # type: ignore[index]
    # The page answered 200: the SRE sees the failures by card, not in the requests' statuses.
    assert _card_failures(buggy_app) == {"buggy": 1, "smudged": 1, "status": 0}
    client.get("/widgets/buggy", headers=EN)
    assert _card_failures(buggy_app)["buggy"] == 2


def _card_failures(app: Flask) -> dict[str, float]:
    exposition = generate_latest(app.extensions["portal_metrics"].registry).decode()
    found = re.findall(r'^portal_widget_failures_total\{widget="(\w+)"\} (\S+)$', exposition, re.M)
    return {widget: float(value) for widget, value in found}


@pytest.mark.parametrize("slug", ["buggy", "smudged"])
def test_a_buggy_card_answers_its_own_failure(
    buggy_app: Flask, slug: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = buggy_app.test_client()
    answer = client.get(f"/widgets/{slug}", headers={**EN, "X-Request-ID": "req-card-0001"})
    assert answer.status_code == 500
    assert answer.headers["X-Portal-Card-Failed"] == "1"
    assert answer.headers["Content-Security-Policy"] == CSP
    assert answer.headers["Cache-Control"] == "no-store"
    assert "X-Widget-Version" not in answer.headers  # the next poll asks for the whole card
    body = answer.get_data(as_text=True)
    reference = re.search(r"Reference for support: ([0-9a-f]{10})<", body)
    assert "This card could not be drawn" in body and reference
    assert "on purpose" not in body and "Traceback" not in body and "no_such_field" not in body
    french = client.get(f"/widgets/{slug}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Cette carte n’a pas pu être affichée" in french
    # The same bug, the same reference: the card's text stays put from one poll to the next.
    assert f"{reference.group(1)}<" in french
    assert client.get("/widgets/status", headers=EN).status_code == 200  # the others answer
    first, again = _failures(caplog)
    assert (first.widget, first.reference, first.request_id) == (slug, reference.group(1), "req-card-0001")  # type: ignore[attr-defined]
    assert first.exc_info is not None and again.reference == first.reference  # type: ignore[attr-defined]


def test_two_bugs_have_two_references(buggy_app: Flask) -> None:
    client = buggy_app.test_client()
    answers = [
        client.get(f"/widgets/{slug}", headers=EN).get_data(as_text=True) for slug in ("buggy", "smudged")
    ]
    said = [re.findall(r"Reference for support: ([0-9a-f]{10})<", answer) for answer in answers]
    assert len(said[0]) == len(said[1]) == 1 and said[0] != said[1]
