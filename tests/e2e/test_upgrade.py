"""An admin upgrades the portal while people keep the dashboard open all day.

Three releases follow one another at one address, sharing a real Redis (the sessions survive,
as they do across a Helm upgrade). Once its own release has stopped answering for two minutes
and a new one answers its cards, the open page says so, and reloads by itself once its tab is
left, unless its layout is being edited: then it waits for the person's "Reload".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from simulators.base import SimServer

from ..support.processes import RedisServer, free_port, portal_process
from .conftest import e2e_config
from .helpers import SETTLED, PageProblems, set_tab_hidden, watched_page

RELEASE_GONE_AFTER = 2 * 60 * 1000  # ms: portal.js


@contextmanager
def _release(name: str, kuma: SimServer, redis: RedisServer, directory: Path, port: int) -> Iterator[str]:
    config = e2e_config(kuma, only=("status",))
    config["cache"]["redis_url"] = redis.url
    config["database"]["data_dir"] = str(directory / "data")
    with portal_process(
        config, directory, workers=1, threads=4, extra_env={"PORTAL_BUILD_COMMIT": name}, port=port
    ) as url:
        yield url


def _build(page: Page) -> str:
    return str(page.evaluate("() => document.body.dataset.build"))


def _back(page: Page) -> None:
    """The new release answers: if the page has found the address silent meanwhile, "Retry now"
    (as a person would) rather than wait for its next try, which backs off up to a minute.
    Looked at and pressed in one step in the page: its own try may end the outage between a
    look from here and a click (CI saw the click wait 30 s for a banner gone meanwhile)."""
    page.evaluate(
        """() => {
          const banner = document.getElementById("portal-offline");
          if (banner && !banner.hidden) document.getElementById("portal-offline-retry").click();
        }"""
    )


def _answer_from_the_new_release(page: Page, gone: bool) -> None:
    """A poll of the status card, answered (by the release now at the address). With `gone`, the
    page's clock is first moved past the two minutes after which a release that no longer
    answers is taken for replaced (until then, a rolling upgrade may have both answering)."""
    expect(page.locator("#portal-offline")).to_be_hidden()
    if gone:
        page.clock.fast_forward(RELEASE_GONE_AFTER + 5_000)
    with page.expect_response(lambda r: r.url.endswith("/widgets/status") and r.status in (200, 204)):
        page.evaluate("() => htmx.trigger(document.getElementById('widget-status-body'), 'poll')")


def _settled(page: Page) -> None:
    page.wait_for_function(SETTLED)
    expect(page.locator("#widget-status .status-row").first).to_be_visible()


@pytest.mark.peers
def test_an_open_page_learns_of_a_new_release_and_reloads_when_left(
    browser: Browser, kuma_server: SimServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    problems = PageProblems()
    # Between two releases the address answers nothing for a moment (the offline banner's case):
    # a poll in that moment is refused, which the browser logs and htmx logs too (seen in CI, on
    # a busy machine whose next release took seconds to start).
    problems.allow_console(
        "Failed to load resource|ERR_CONNECTION_REFUSED|ERR_FAILED|htmx:afterRequest|htmx:sendError"
    )
    port = free_port()
    context = browser.new_context(base_url=f"http://127.0.0.1:{port}", locale="en")
    context.set_default_timeout(30_000)
    page = watched_page(context, problems)
    banner = page.locator("#portal-updated")
    try:
        with _release("release-1", kuma_server, redis_server, tmp_path, port):
            page.clock.install()  # time runs, and a test may move it on
            page.goto("/")
            _settled(page)
            first = _build(page)
            expect(banner).to_be_hidden()

        with _release("release-2", kuma_server, redis_server, tmp_path, port):
            _back(page)
            # The new release answers, but the page's own answered a moment ago: nothing said yet.
            _answer_from_the_new_release(page, gone=False)
            expect(banner).to_be_hidden()
            # Two minutes on, the page's release has not answered again: it says so.
            _answer_from_the_new_release(page, gone=True)
            expect(banner).to_be_visible()
            expect(banner).to_contain_text("The portal has been updated")
            assert _build(page) == first
            expect(page.locator("#widget-status .status-row").first).to_be_visible()  # still shown
            with page.expect_event("load"):
                set_tab_hidden(page, True)  # the person switches to another tab: the page reloads
            _settled(page)
            second = _build(page)
            assert second != first
            expect(banner).to_be_hidden()

        with _release("release-3", kuma_server, redis_server, tmp_path, port):
            _back(page)
            page.locator("#layout-toggle").click()  # the person is arranging their cards
            expect(page.locator("#layout-toggle")).to_have_attribute("aria-pressed", "true")
            _answer_from_the_new_release(page, gone=True)
            expect(banner).to_be_visible()
            page.evaluate("() => { window.__samePage = true; }")
            set_tab_hidden(page, True)
            page.wait_for_timeout(1000)
            assert page.evaluate("() => window.__samePage === true"), "reloaded in the middle of an edit"
            set_tab_hidden(page, False)
            with page.expect_event("load"):
                page.locator("#portal-updated-reload").click()
            _settled(page)
            assert _build(page) not in (first, second)
            assert page.evaluate("() => window.__samePage") is None
            expect(banner).to_be_hidden()
    finally:
        context.close()
    assert not problems.console, f"console errors: {problems.console}"
    assert not problems.csp, f"Content-Security-Policy violations: {problems.csp}"
