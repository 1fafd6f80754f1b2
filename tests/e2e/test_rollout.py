"""A page during a rolling upgrade, in Chromium: its files come from its own release.

Two releases of the portal (tests.support.releases: the older one's stylesheet, script and
icon sprite differ) sit behind one address. The page is drawn by the newer release, and the
first ask for each of its versioned files reaches the older release, as the Ingress may send
it. That pod sends the browser to ask again, which reaches the page's release: the page shows
with its own stylesheet, script and icons, and nothing in the console.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, expect
from werkzeug.serving import make_server

from portal import create_app
from simulators.base import SimServer

from ..conftest import SECRET
from ..support.releases import other_release
from .conftest import e2e_config
from .helpers import SETTLED, PageProblems, watched_page


def _release(kuma_server: SimServer, directory: Path) -> Flask:
    """A pod of the portal with the status card on the session's Uptime Kuma simulator."""
    config = e2e_config(kuma_server, only=("status",))
    config["database"] = {"data_dir": str(directory / "data")}
    return create_app({"PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})


@pytest.fixture
def rollout(kuma_server: SimServer, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """The address, and each static request's path with the release that answered it."""
    new = _release(kuma_server, tmp_path / "new")
    old = other_release(_release(kuma_server, tmp_path / "old"), tmp_path / "old")
    answered: list[str] = []

    def service(environ: dict[str, Any], start_response: Any) -> Any:
        # A versioned file's first ask goes to the older release; the asks again to the page's.
        path, query = environ["PATH_INFO"], environ.get("QUERY_STRING", "")
        first_ask = path.startswith("/static/") and "v=" in query and "try=" not in query
        if path.startswith("/static/"):
            answered.append(f"{'old' if first_ask else 'new'} {path}?{query}")
        return (old if first_ask else new).wsgi_app(environ, start_response)

    server = make_server("127.0.0.1", 0, service, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", answered
    server.shutdown()
    thread.join()


def test_a_page_gets_its_own_releases_files_when_the_other_release_answers_first(
    browser: Browser, rollout: tuple[str, list[str]]
) -> None:
    url, answered = rollout
    problems = PageProblems()
    context = browser.new_context(base_url=url, viewport={"width": 1280, "height": 900})
    page = watched_page(context, problems)
    responses: list[tuple[int, str]] = []
    page.on("response", lambda r: responses.append((r.status, r.url)) if "/static/" in r.url else None)
    page.goto("/auth/demo-user/camille")
    page.wait_for_function(SETTLED)
    expect(page.locator("#widget-status .status-row").first).to_be_visible()
    # Its own stylesheet is in force, its own script runs (htmx and the cards' polling), its
    # icons are drawn, and nothing of the other release's files reached the page.
    assert page.evaluate("getComputedStyle(document.getElementById('widget-grid')).display") == "grid"
    assert (
        page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--portal-release')") == ""
    )
    assert page.evaluate("typeof htmx") == "object" and page.evaluate("window.portalRelease") is None
    assert page.locator("svg use").first.evaluate("(use) => use.getBBox().width") > 0
    for name in ("css/portal.css", "js/portal.js", "icons/ui.svg"):
        statuses = [status for status, seen in responses if f"/static/{name}?" in seen]
        assert statuses[:2] == [307, 200], (name, responses)
    for name in ("css/portal.css", "js/portal.js", "icons/ui.svg"):
        asks = [line.split()[0] for line in answered if f"/static/{name}?" in line]
        assert asks[:2] == ["old", "new"], (name, answered)
    context.close()
    assert not problems.console, problems.console
    assert not problems.csp, problems.csp
