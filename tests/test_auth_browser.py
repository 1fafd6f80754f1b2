"""Single sign-on in a real browser: Debian's Chromium driven by Playwright, through the provider's form."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from .e2e.helpers import set_tab_hidden
from .support.keycloak import USERS, KeycloakSim


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def _sign_in(page: Page, portal_url: str, username: str, path: str = "/") -> None:
    page.goto(f"{portal_url}{path}")
    page.wait_for_selector("#kc-form-login")
    page.fill("#username", username)
    page.fill("#password", USERS[username])
    page.click("#kc-login")
    page.wait_for_selector("#user-menu")


def test_login_through_the_form_shows_the_user_and_the_cards(page: Page, portal_url: str) -> None:
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security" in message.text else None,
    )
    _sign_in(page, portal_url, "alice", "/?from=bookmark")
    assert page.url == f"{portal_url}/?from=bookmark"
    chip = page.locator(".user-chip")
    assert chip.locator(".user-chip__avatar").inner_text() == "AA"
    assert "Alice Admin" in chip.inner_text()
    chip.click()
    assert page.locator(".user-menu__panel").is_visible()
    menu = page.locator(".user-menu__panel").inner_text()
    assert "Portal administrator" in menu and "/admins" not in menu  # the configuration's name for the role
    page.keyboard.press("Escape")
    assert not page.locator(".user-menu__panel").is_visible()
    page.wait_for_selector("#widget-status .widget-content.is-ok, #widget-status .widget-content.is-stale")
    assert page.locator(".tool-tile__name", has_text="Vault").count() == 1
    assert violations == []


def test_an_ended_session_sends_the_page_to_login_not_into_a_card(
    page: Page, portal_url: str, keycloak: KeycloakSim
) -> None:
    keycloak.backchannel(f"{portal_url}/auth/backchannel-logout")
    _sign_in(page, portal_url, "alice")
    page.wait_for_selector("#widget-status .widget-content:not(.is-loading)")
    assert keycloak.sign_out("alice") >= 1
    page.evaluate("htmx.trigger(document.getElementById('widget-status-body'), 'poll')")
    page.wait_for_selector("#kc-form-login")  # the whole page went to the login
    assert "/realms/portal/" in page.url
    _sign_in(page, portal_url, "alice")
    assert not page.locator("#portal-lost-change").is_visible()  # a poll is no change lost


def test_an_ended_session_sends_a_layout_change_to_login_not_to_an_error(
    page: Page, portal_url: str, keycloak: KeycloakSim
) -> None:
    """The session ends while the person arranges their cards: their next move takes the page
    to the login (as a card's poll would), not "the portal cannot be reached"."""
    keycloak.backchannel(f"{portal_url}/auth/backchannel-logout")
    _sign_in(page, portal_url, "alice", "/?from=layout")
    page.click("#layout-toggle")
    page.wait_for_selector("#layout-toggle[aria-pressed=true]")
    assert keycloak.sign_out("alice") >= 1
    page.locator("#widget-status [data-action=hide]").click()
    page.wait_for_selector("#kc-form-login")  # the whole page went to the login
    assert "/realms/portal/" in page.url
    page.fill("#username", "alice")
    page.fill("#password", USERS["alice"])
    page.click("#kc-login")
    page.wait_for_selector("#user-menu")
    assert page.url == f"{portal_url}/?from=layout"  # back on the page the change came from
    # ... which says the change was not made (the card is not hidden), once.
    lost = page.locator("#portal-lost-change")
    assert lost.is_visible()
    assert "Your session had ended, so your last change was not made" in lost.inner_text()
    assert page.locator("#widget-status").is_visible()
    page.click("#portal-lost-change-close")
    assert not lost.is_visible()
    page.reload()
    page.wait_for_selector("#user-menu")
    assert not page.locator("#portal-lost-change").is_visible()


def test_a_tab_left_open_through_a_sign_in_in_another_tab_still_saves_its_changes(
    page: Page, portal_url: str, keycloak: KeycloakSim
) -> None:
    """The session ends; the person signs in again in another tab (a new session, a new token).
    The first tab, back in front, has the old session's token: its change is refused for it
    once, brings the new token back, and goes again, saved."""
    keycloak.backchannel(f"{portal_url}/auth/backchannel-logout")
    _sign_in(page, portal_url, "alice")
    page.click("#layout-toggle")
    page.wait_for_selector("#layout-toggle[aria-pressed=true]")
    set_tab_hidden(page, True)  # the person is in the other tab: this one does not poll
    assert keycloak.sign_out("alice") >= 1
    other = page.context.new_page()
    _sign_in(other, portal_url, "alice")
    other.close()
    set_tab_hidden(page, False)
    answers: list[int] = []
    page.on(
        "response",
        lambda response: answers.append(response.status) if response.url.endswith("/layout") else None,
    )
    page.locator("#widget-status [data-action=hide]").click()
    page.wait_for_function(
        "() => document.querySelector('#widget-status').classList.contains('is-hidden-card')"
    )
    for _ in range(50):
        if 200 in answers:
            break
        page.wait_for_timeout(100)
    assert answers[:2] == [403, 200], answers
    assert page.url == f"{portal_url}/"  # no trip to the login
    page.reload()
    page.wait_for_selector("#user-menu")
    assert "is-hidden-card" in (page.locator("#widget-status").get_attribute("class") or "")


def test_sign_in_unavailable_tries_again_by_itself(
    page: Page, portal_url: str, keycloak: KeycloakSim
) -> None:
    """A tab sent to the login while Keycloak is down (its session ended then) does not stay on
    the error page: it says it tries again, and does, as its Retry-After says."""
    keycloak.mode(down="error")
    page.clock.install()
    page.goto(f"{portal_url}/?from=outage")
    page.wait_for_selector(".error-card__title")
    assert page.locator(".error-card__title").inner_text() == "Sign-in is unavailable"
    assert "This page tries again by itself every 30 seconds." in page.inner_text("body")
    keycloak.mode(down=None)
    page.clock.run_for(31_000)
    page.wait_for_selector("#kc-form-login")  # tried again: Keycloak's form
    page.fill("#username", "alice")
    page.fill("#password", USERS["alice"])
    page.click("#kc-login")
    page.wait_for_selector("#user-menu")
    assert page.url == f"{portal_url}/?from=outage"


def test_logout_from_the_menu_ends_the_provider_session(page: Page, portal_url: str) -> None:
    _sign_in(page, portal_url, "bob")
    assert page.locator(".tool-tile__name", has_text="Vault").count() == 0
    assert page.locator("#widget-status").count() == 0
    page.click(".user-chip")
    page.click(".user-menu__button")
    page.wait_for_url(f"{portal_url}/auth/logged-out")
    assert page.locator("#auth-title").inner_text() == "You are signed out"
    page.click(".error-card__action")
    page.wait_for_selector("#kc-form-login")  # the password is asked again
