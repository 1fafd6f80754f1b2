"""Single sign-on against the Keycloak-shaped provider: login, session, logout, roles, faults."""

from __future__ import annotations

import logging
import re
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from jwcrypto import jwk
from prometheus_client import generate_latest
from sqlalchemy import select

from portal.auth import _relevant_grants, login_attempts
from portal.auth.claims import MAX_GRANTS_BYTES, fit_grants, from_cookie, to_cookie
from portal.auth.oidc import OidcClient, ProviderUnavailable
from portal.config import OidcSection
from portal.identity import User
from portal.state import portal_state
from portal.storage import Preferences, last_sign_in, record_sign_in
from portal.storage.models import UserPreference

from .support.keycloak import (
    BACKCHANNEL_EVENT,
    CLIENT_ID,
    USERS,
    KeycloakSim,
    authenticate,
    login,
    logout,
    refresh_target,
    start_login,
    with_query,
)
from .support.live import serve
from .support.processes import free_port
from .test_shell import _InlineFinder

TILES = re.compile(r'<span class="tool-tile__name[^"]*">([^<]+)<')


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Accept-Language"] = "en"
        yield session


def _tiles(page: str) -> list[str]:
    return TILES.findall(page)


# --- login ---------------------------------------------------------------------------------------


def test_a_full_login_through_the_providers_form(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim, sso_app: Flask
) -> None:
    began = datetime.now(UTC).replace(microsecond=0)
    page = login(browser, portal_url, "alice")
    assert page.status_code == 200
    assert page.url == f"{portal_url}/"
    assert "Alice Admin" in page.text
    assert 'class="user-chip__avatar" aria-hidden="true">AA<' in page.text
    # The roles the configuration names, as it names them; the others (raw Keycloak names) not at all.
    assert '<li class="tag">Portal administrator</li>' in page.text
    assert "manage-users" not in page.text and "/admins" not in page.text
    cookie = next(c for c in browser.cookies if c.name == "portal_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert len(cookie.value) < 4096
    assert "refresh" not in cookie.value and "eyJ" not in cookie.value  # no token in the cookie
    # The sign-in is noted in the portal's database: what keeps the person's calendar feed alive.
    moments = _signed_in_moments(sso_app).values()
    assert any(m is not None and began <= m <= datetime.now(UTC) for m in moments), moments


def test_the_authorization_request(portal_url: str, browser: requests.Session) -> None:
    trip = start_login(browser, portal_url, "/")
    query = parse_qs(urlsplit(trip.authorization_url).query)
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["openid profile email"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == [f"{portal_url}/auth/callback"]
    assert query["client_id"] == [CLIENT_ID]
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["state"] != query["nonce"]


def test_a_page_without_a_session_goes_to_login_and_comes_back(
    portal_url: str, browser: requests.Session
) -> None:
    first = browser.get(f"{portal_url}/?view=compact", allow_redirects=False)
    assert first.status_code == 302
    assert first.headers["Location"] == "/auth/login?next=%2F%3Fview%3Dcompact"
    trip = start_login(browser, portal_url, "/?view=compact")
    authenticate(browser, trip, "bob", USERS["bob"])
    landed = browser.get(trip.callback_url)
    assert landed.url == f"{portal_url}/?view=compact"
    assert "Bob User" in landed.text


def test_an_htmx_request_without_a_session_sends_the_whole_page_to_login(portal_url: str) -> None:
    response = requests.get(
        f"{portal_url}/widgets/status",
        headers={"HX-Request": "true", "HX-Current-URL": f"{portal_url}/?tab=2"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/auth/login?next=%2F%3Ftab%3D2"
    assert response.text == ""  # nothing a card could show


def test_public_paths_need_no_session(portal_url: str) -> None:
    for path in ("/healthz", "/readyz", "/static/css/portal.css", "/auth/logged-out"):
        assert requests.get(f"{portal_url}{path}", allow_redirects=False, timeout=10).status_code == 200


def test_wrong_password(portal_url: str, browser: requests.Session) -> None:
    trip = start_login(browser, portal_url)
    response = authenticate(browser, trip, "alice", "not-her-password")
    assert "Invalid username or password." in response.text
    assert not trip.callback_url
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302


@pytest.mark.parametrize("target", ["https://evil.example", "//evil.example", "/\\evil.example"])
def test_no_open_redirect_after_login(portal_url: str, browser: requests.Session, target: str) -> None:
    page = login(browser, portal_url, "bob", next_path=target)
    assert page.url == f"{portal_url}/"


# --- what the provider's answer must be ------------------------------------------------------------


def _problem(response: requests.Response, status: int, title: str) -> None:
    assert response.status_code == status, response.text[:300]
    assert title in response.text
    assert "Traceback" not in response.text
    finder = _InlineFinder()
    finder.feed(response.text)
    assert finder.problems == []


def test_tampered_state(portal_url: str, browser: requests.Session) -> None:
    trip = start_login(browser, portal_url)
    authenticate(browser, trip, "alice", USERS["alice"])
    tampered = with_query(trip.callback_url, state="x" * 43)
    _problem(browser.get(tampered), 400, "Sign-in could not be completed")
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302


def test_a_replayed_code_is_refused(portal_url: str, browser: requests.Session) -> None:
    trip = start_login(browser, portal_url)
    authenticate(browser, trip, "alice", USERS["alice"])
    assert browser.get(trip.callback_url).status_code == 200
    # The same callback again: its state was used.
    _problem(browser.get(trip.callback_url), 400, "Sign-in could not be completed")
    # The same code with a state of a new login (code injection): Keycloak refuses it.
    with requests.Session() as other:
        other.headers["Accept-Language"] = "en"
        fresh = start_login(other, portal_url)
        state = parse_qs(urlsplit(fresh.authorization_url).query)["state"][0]
        _problem(other.get(with_query(trip.callback_url, state=state)), 400, "Sign-in could not be completed")
        assert other.get(f"{portal_url}/", allow_redirects=False).status_code == 302


def test_a_wrong_nonce_is_refused(portal_url: str, browser: requests.Session) -> None:
    trip = start_login(browser, portal_url)
    trip.authorization_url = with_query(trip.authorization_url, nonce="n" * 43)
    authenticate(browser, trip, "alice", USERS["alice"])
    _problem(browser.get(trip.callback_url), 400, "Sign-in could not be completed")
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302


def test_a_token_signed_by_another_key_is_refused(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim, caplog: pytest.LogCaptureFixture
) -> None:
    keycloak.mode(signing="rogue")
    trip = start_login(browser, portal_url)
    authenticate(browser, trip, "alice", USERS["alice"])
    _problem(browser.get(trip.callback_url), 502, "Sign-in failed")
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302
    assert any(r.levelno == logging.WARNING and "login failed" in r.getMessage() for r in caplog.records)


def test_a_rotated_key_is_fetched_once(portal_url: str, keycloak: KeycloakSim) -> None:
    with requests.Session() as first:
        login(first, portal_url, "bob")
    assert keycloak.count("/certs") == 1
    keycloak.mode(signing="rotated")
    time.sleep(1.1)  # the keys are refetched at most once a second
    with requests.Session() as second:
        assert "Bob User" in login(second, portal_url, "bob").text
    assert keycloak.count("/certs") == 2
    assert keycloak.count("/.well-known/openid-configuration") == 1


def test_a_cancelled_login(portal_url: str, browser: requests.Session) -> None:
    trip = start_login(browser, portal_url)
    state = parse_qs(urlsplit(trip.authorization_url).query)["state"][0]
    response = browser.get(f"{portal_url}/auth/callback", params={"error": "access_denied", "state": state})
    _problem(response, 400, "Sign-in could not be completed")


def test_anonymous_logins_store_nothing_on_the_server(
    portal_url: str, sso_app: Flask, browser: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A flood of /auth/login from nobody must not fill the pod's store (its /dev/shm without Redis):
    # the login under way lives in the browser's signed cookie until Keycloak sends it back.
    store = sso_app.extensions["portal_auth"].sessions.store
    writes: list[str] = []
    real_set = store.set
    monkeypatch.setattr(
        store, "set", lambda key, *args, **kw: (writes.append(key), real_set(key, *args, **kw))
    )
    for _ in range(30):
        with requests.Session() as anonymous:
            assert anonymous.get(f"{portal_url}/auth/login", allow_redirects=False).status_code == 302
    assert writes == []
    login(browser, portal_url, "bob")  # a real login still works, and writes its session
    assert len(writes) >= 1 and all("login" not in key for key in writes)


def test_logins_in_four_tabs_keep_the_last_three(portal_url: str, browser: requests.Session) -> None:
    trips = [start_login(browser, portal_url, f"/?tab={n}") for n in range(4)]
    oldest = trips[0]
    authenticate(browser, oldest, "bob", USERS["bob"])
    _problem(browser.get(oldest.callback_url), 400, "Sign-in could not be completed")
    # Keycloak knows bob now (its own session): the last tab's login comes straight back.
    landed = browser.get(trips[-1].authorization_url)
    assert landed.url == f"{portal_url}/?tab=3" and "Bob User" in landed.text


def test_a_login_back_after_ten_minutes_is_refused() -> None:
    session: dict[str, Any] = {}
    attempt = login_attempts.LoginAttempt(
        "nonce", "verifier", "https://portal.example.org/auth/callback", "/"
    )
    login_attempts.remember(session, "state-1", attempt)
    assert login_attempts.take(dict(session), "state-1") == attempt
    assert login_attempts.take(dict(session), "another") is None
    session[login_attempts.LOGINS_KEY][0][5] -= login_attempts.LOGIN_TTL + 1
    assert login_attempts.take(session, "state-1") is None
    assert login_attempts.LOGINS_KEY not in session  # nothing left to carry


# --- the provider down or misbehaving ------------------------------------------------------------


def test_provider_down_at_login_gives_the_error_page(
    make_sso_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_sso_app(server_url=f"http://127.0.0.1:{free_port()}/")
    client = app.test_client()
    response = client.get("/auth/login?next=/", headers={"Accept-Language": "fr"})
    page = response.get_data(as_text=True)
    assert response.status_code == 503
    assert "La connexion est indisponible" in page
    assert '<html lang="fr"' in page
    # A tab sent here by a poll (its session ended while Keycloak was down) tries again by itself.
    assert '<a class="error-card__action" href="/auth/login?next=%2F" data-retry-after="30">' in page
    assert response.headers["Retry-After"] == "30"
    assert "Traceback" not in page
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("portal.auth")
    ]
    assert warnings and warnings[0].exc_info is None
    assert client.get("/", headers={"Accept-Language": "en"}).status_code == 302


@pytest.mark.parametrize(("down", "status"), [("error", 503), ("garbage", 502)])
def test_provider_misbehaving_at_login(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim, down: str, status: int
) -> None:
    keycloak.mode(down=down)
    response = browser.get(f"{portal_url}/auth/login")
    assert response.status_code == status
    assert "Sign-in" in response.text and "Traceback" not in response.text


def test_existing_sessions_keep_working_while_the_provider_is_down(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim, caplog: pytest.LogCaptureFixture
) -> None:
    keycloak.mode(ttl={"AccessToken": 1})
    login(browser, portal_url, "alice")
    keycloak.mode(down="error")
    time.sleep(1.2)  # the access token expired: the portal tries to refresh, and cannot
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 200
    assert browser.get(f"{portal_url}/widgets/status").status_code == 200
    assert any("session refresh failed" in r.getMessage() for r in caplog.records)
    with requests.Session() as newcomer:
        assert newcomer.get(f"{portal_url}/auth/login").status_code == 503


# --- the session ------------------------------------------------------------------------------------


def test_a_widget_poll_does_not_call_the_provider(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim
) -> None:
    login(browser, portal_url, "alice")
    before = keycloak.calls()
    for _ in range(20):
        assert browser.get(f"{portal_url}/widgets/status", headers={"HX-Request": "true"}).status_code == 200
    assert keycloak.calls() == before


def test_an_expired_session(portal_url: str, browser: requests.Session, keycloak: KeycloakSim) -> None:
    lifetime = 4  # the next request comes well within it, even on a slow machine
    keycloak.mode(ttl={"AccessToken": lifetime, "RefreshToken": lifetime})
    login(browser, portal_url, "alice")
    issued = time.monotonic()
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 200
    time.sleep(max(0.0, issued + lifetime + 0.5 - time.monotonic()))
    htmx = browser.get(
        f"{portal_url}/widgets/status",
        headers={"HX-Request": "true", "HX-Current-URL": f"{portal_url}/"},
        allow_redirects=False,
    )
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"] == "/auth/login?next=%2F"
    # A change (the page's own JSON request, a card's form) is told where to log in too, not
    # "401" alone, but not through HX-Redirect, which htmx follows before the page can say that
    # the change was not made.
    layout = browser.post(f"{portal_url}/layout", json={"cards": []}, allow_redirects=False)
    assert layout.status_code == 401 and "HX-Redirect" not in layout.headers
    assert layout.headers["X-Portal-Login"] == "/auth/login?next=%2F"
    change = browser.post(
        f"{portal_url}/widgets/tasks/task/1/status",
        data={"status": "2", "version": "1"},
        headers={"HX-Request": "true", "HX-Current-URL": f"{portal_url}/"},
        allow_redirects=False,
    )
    assert change.status_code == 401 and "HX-Redirect" not in change.headers
    assert change.headers["X-Portal-Login"] == "/auth/login?next=%2F"
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302


def test_the_session_ends_when_the_provider_refuses_the_refresh(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim
) -> None:
    # Long enough for the next two requests on a slow machine (with 1 s, the token had expired
    # by the first one once), short enough to wait out.
    lifetime = 4
    keycloak.mode(ttl={"AccessToken": lifetime})
    login(browser, portal_url, "bob")
    issued = time.monotonic()
    assert keycloak.sign_out("bob") >= 1  # no back-channel URL: the portal learns it at the refresh
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 200
    time.sleep(max(0.0, issued + lifetime + 0.3 - time.monotonic()))
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302


def _keycloak_calls(app: Flask) -> dict[str, float]:
    """The portal's calls to Keycloak by outcome, from its own metrics (as Prometheus reads them)."""
    text = generate_latest(app.extensions["portal_metrics"].registry).decode()
    found = re.findall(
        r'portal_upstream_request_duration_seconds_count\{outcome="(\w+)",upstream="keycloak"\} (\S+)', text
    )
    return {outcome: float(count) for outcome, count in found}


def test_keycloak_is_an_upstream_in_the_metrics(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim, sso_app: Flask
) -> None:
    """An SRE sees Keycloak failing the portal's sign-ins and refreshes as any other upstream:
    a session Keycloak ended is "rejected" (no fault), Keycloak answering 500 "server_error"."""
    lifetime = 3
    keycloak.mode(ttl={"AccessToken": lifetime})
    with requests.Session() as other:
        other.headers["Accept-Language"] = "en"
        login(browser, portal_url, "alice")
        login(other, portal_url, "bob")
        issued = time.monotonic()
        signed_in = _keycloak_calls(sso_app)
        assert signed_in.get("ok", 0) >= 4, signed_in  # discovery, keys, two code exchanges
        assert set(signed_in) == {"ok"}
        assert keycloak.sign_out("bob") >= 1
        time.sleep(max(0.0, issued + lifetime + 0.3 - time.monotonic()))
        assert other.get(f"{portal_url}/", allow_redirects=False).status_code == 302  # refresh refused
        assert _keycloak_calls(sso_app).get("rejected") == 1
        keycloak.mode(down="error")
        assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 200  # kept meanwhile
        assert _keycloak_calls(sso_app).get("server_error") == 1


def _signed_in_moments(app: Flask) -> dict[str, datetime | None]:
    """Each person's last sign-in as the portal's database keeps it, by subject."""
    with app.app_context():
        database = portal_state().database
        with database.session() as session:
            query = select(UserPreference.subject).where(UserPreference.namespace == "portal")
            subjects = set(session.execute(query).scalars())
        return {subject: last_sign_in(Preferences(database, subject)) for subject in subjects}


def test_a_refresh_keeps_the_session_and_updates_it(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim, sso_app: Flask
) -> None:
    keycloak.mode(ttl={"AccessToken": 1})
    login(browser, portal_url, "alice")
    moments = _signed_in_moments(sso_app)  # alice's is the newest: she just signed in
    subject = max(moments, key=lambda who: moments[who] or datetime.min.replace(tzinfo=UTC))
    # Signed in two days ago, as far as the database knows: a page left open since then.
    with sso_app.app_context():
        record_sign_in(
            User(subject=subject, username="alice", name="Alice"), datetime.now(UTC) - timedelta(days=2)
        )
    time.sleep(1.2)
    before = keycloak.count("/token")
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 200
    assert keycloak.count("/token") == before + 1
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 200
    # Keycloak accepted the person again: that counts as signed in (a feed stays alive).
    refreshed = _signed_in_moments(sso_app)[subject]
    assert refreshed is not None and datetime.now(UTC) - refreshed < timedelta(minutes=1)


# --- logout -----------------------------------------------------------------------------------------


def test_logout_ends_the_provider_session_too(portal_url: str, browser: requests.Session) -> None:
    login(browser, portal_url, "alice")
    page = logout(browser, portal_url)
    assert page.url.startswith(f"{portal_url}/auth/logged-out")
    assert "You are signed out" in page.text
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302
    # A new login asks for the password again: the provider's session is over.
    trip = start_login(browser, portal_url)
    assert 'id="kc-form-login"' in browser.get(trip.authorization_url).text


def test_logout_sends_the_id_token_hint(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim
) -> None:
    page = login(browser, portal_url, "alice")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = browser.post(
        f"{portal_url}/auth/logout", data={"csrf_token": token.group(1)}, allow_redirects=False
    )
    assert response.status_code == 200
    target = refresh_target(response.text)
    assert target.startswith(f"{keycloak.issuer}/protocol/openid-connect/logout?")
    query = parse_qs(urlsplit(target).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["post_logout_redirect_uri"] == [f"{portal_url}/auth/logged-out"]
    assert query["id_token_hint"][0].count(".") == 2
    # The portal session ended first, before the browser even reaches Keycloak.
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302


def test_logout_needs_the_sessions_token(portal_url: str, browser: requests.Session) -> None:
    login(browser, portal_url, "alice")
    assert browser.post(f"{portal_url}/auth/logout", data={"csrf_token": "forged"}).status_code == 400
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 200


# --- back-channel logout ----------------------------------------------------------------------------


def test_back_channel_logout_ends_the_portal_session(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim
) -> None:
    keycloak.backchannel(f"{portal_url}/auth/backchannel-logout")
    login(browser, portal_url, "alice")
    with requests.Session() as bob:
        login(bob, portal_url, "bob")
        assert keycloak.sign_out("alice") >= 1
        assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302
        assert bob.get(f"{portal_url}/", allow_redirects=False).status_code == 200


def _logout_claims(keycloak: KeycloakSim, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": keycloak.issuer,
        "aud": CLIENT_ID,
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "jti": f"jti-{time.monotonic_ns()}",
        "sub": "7d0c2a1e-1111-4c6e-9a5e-000000000001",
        "events": {BACKCHANNEL_EVENT: {}},
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    "forge",
    [
        lambda kc: kc.mint(_logout_claims(kc), key=jwk.JWK.generate(kty="RSA", size=2048), kid=kc.key["kid"]),
        lambda kc: kc.mint(_logout_claims(kc), key=jwk.JWK.generate(kty="RSA", size=2048, kid="unknown")),
        lambda kc: kc.mint(_logout_claims(kc, aud="another-client")),
        lambda kc: kc.mint(_logout_claims(kc, iss="http://127.0.0.1:1/realms/portal")),
        lambda kc: kc.mint(_logout_claims(kc, events=None)),
        lambda kc: kc.mint(_logout_claims(kc, nonce="n")),
        lambda kc: kc.mint(_logout_claims(kc, exp=int(time.time()) - 600)),
        lambda kc: kc.mint(_logout_claims(kc, iat=int(time.time()) - 365 * 86400, exp=None)),
        lambda kc: kc.mint(_logout_claims(kc, iat=int(time.time()) + 3600)),
        lambda kc: kc.mint(_logout_claims(kc, jti=None)),
        lambda kc: "not.a.token",
    ],
    ids=[
        "other-key",
        "unknown-kid",
        "aud",
        "iss",
        "no-event",
        "nonce",
        "expired",
        "a-year-old",
        "future",
        "no-jti",
        "garbage",
    ],
)
def test_a_forged_logout_token_is_refused(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim, forge: Any
) -> None:
    login(browser, portal_url, "alice")
    response = requests.post(
        f"{portal_url}/auth/backchannel-logout", data={"logout_token": forge(keycloak)}, timeout=10
    )
    assert response.status_code == 400
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 200


def test_a_genuine_logout_token_by_subject(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim
) -> None:
    login(browser, portal_url, "alice")
    token = keycloak.mint(_logout_claims(keycloak))
    response = requests.post(
        f"{portal_url}/auth/backchannel-logout", data={"logout_token": token}, timeout=10
    )
    assert response.status_code == 200
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 302


def test_a_replayed_logout_token_is_refused(
    portal_url: str, browser: requests.Session, keycloak: KeycloakSim
) -> None:
    token = keycloak.mint(_logout_claims(keycloak))
    url = f"{portal_url}/auth/backchannel-logout"
    assert requests.post(url, data={"logout_token": token}, timeout=10).status_code == 200
    login(browser, portal_url, "alice")  # signed in again afterwards: the old token must not end it
    assert requests.post(url, data={"logout_token": token}, timeout=10).status_code == 400
    assert browser.get(f"{portal_url}/", allow_redirects=False).status_code == 200


# --- roles and groups ------------------------------------------------------------------------------


def test_alice_and_bob_see_different_tiles_and_widgets(portal_url: str) -> None:
    with requests.Session() as alice, requests.Session() as bob:
        alice_page = login(alice, portal_url, "alice").text
        bob_page = login(bob, portal_url, "bob").text
        assert "Vault" in _tiles(alice_page) and "Argo CD" in _tiles(alice_page)
        assert "Vault" not in _tiles(bob_page) and "Argo CD" not in _tiles(bob_page)
        assert len(_tiles(alice_page)) == 9 and len(_tiles(bob_page)) == 7
        assert 'id="widget-status"' in alice_page
        assert 'id="widget-status"' not in bob_page
        assert alice.get(f"{portal_url}/widgets/status").status_code == 200
        forbidden = bob.get(
            f"{portal_url}/widgets/status", headers={"HX-Request": "true", "Accept-Language": "en"}
        )
        assert forbidden.status_code == 403
        assert "You do not have access to this widget." in forbidden.text


def test_the_dashboard_and_the_tile_stylesheet_are_never_shared(portal_url: str) -> None:
    with requests.Session() as anonymous:
        for path in ("/", "/tiles.css"):
            answer = anonymous.get(f"{portal_url}{path}", allow_redirects=False, timeout=10)
            assert answer.status_code in (302, 401)
            assert answer.status_code == 401 or "/auth/login" in answer.headers["Location"]
            assert "tile--" not in answer.text
    with requests.Session() as alice, requests.Session() as bob:
        sheets = {}
        for name, browser in (("alice", alice), ("bob", bob)):
            page = login(browser, portal_url, name)
            assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
            href = re.search(r'href="(/tiles\.css\?v=[0-9a-f]+)"', page.text)
            assert href, "the page links its tile stylesheet"
            sheets[name] = browser.get(f"{portal_url}{href.group(1)}", allow_redirects=False, timeout=10)
        assert ".tile--vault{" in sheets["alice"].text and ".tile--argo-cd{" in sheets["alice"].text
        assert sheets["bob"].status_code == 200 and ".tile--gitlab{" in sheets["bob"].text
        assert "vault" not in sheets["bob"].text and "argo" not in sheets["bob"].text  # portal-admin's
        for sheet in sheets.values():
            directives = {d.strip() for d in sheet.headers["Cache-Control"].split(",")}
            assert "private" in directives and "public" not in directives


def test_roles_come_from_realm_client_and_groups(portal_url: str, sso_app: Flask) -> None:
    with requests.Session() as alice:
        login(alice, portal_url, "alice")
        cookie = next(c for c in alice.cookies if c.name == "portal_session")
    serializer = sso_app.session_interface.get_signing_serializer(sso_app)  # type: ignore[attr-defined]
    identity = from_cookie(serializer.loads(cookie.value)["auth"])
    assert identity is not None
    user = identity[0]
    assert user.roles == {"portal-admin", "manage-users"}  # realm + the portal client's, no noise
    assert user.groups == {"/admins", "/team-a"}
    assert user.email == "alice@example.org"


def test_a_cookie_with_too_many_groups_keeps_those_the_config_names() -> None:
    many = frozenset(f"/projects/team-{n:04d}" for n in range(400))
    user = User("s", "u", "U", roles=frozenset({"portal-admin", "x"}), groups=many | {"/admins"})
    fitted = fit_grants(user, {"portal-admin", "/admins"})
    assert fitted.roles == {"portal-admin"} and fitted.groups == {"/admins"}
    assert len(str(to_cookie(fitted, "sid", 0))) < MAX_GRANTS_BYTES
    small = User("s", "u", "U", roles=frozenset({"a"}))
    assert fit_grants(small, set()) is small


def test_a_trimmed_cookie_keeps_the_teams_of_the_starting_layouts_and_the_menus_names(
    make_app: Callable[..., Flask],
) -> None:
    """Someone in many groups still gets their team's starting page and their team's name."""

    def teams(config: dict[str, Any]) -> None:
        config["layout"] = {"defaults": [{"roles": ["/team-b"], "pinned": ["Harbor"]}]}
        config["auth"]["role_labels"] = {"/team-c": "Team C"}
        config["widgets"]["status"]["roles"] = ["portal-admin"]

    app = make_app(teams)
    with app.app_context():
        relevant = _relevant_grants(portal_state())
    assert {"/team-b", "/team-c", "portal-admin"} <= relevant
    many = frozenset(f"/projects/team-{n:04d}" for n in range(400))
    erin = User("s", "erin", "Erin", groups=many | {"/team-b", "/team-c"})
    assert fit_grants(erin, relevant).groups == {"/team-b", "/team-c"}


def test_the_cookie_is_secure_behind_tls(make_sso_app: Callable[..., Flask], keycloak: KeycloakSim) -> None:
    app = make_sso_app(lambda c: c["auth"]["oidc"].update(allowed_hosts=["portal.example", "localhost"]))
    client = app.test_client()
    response = client.get("/auth/login", base_url="https://portal.example")
    assert response.status_code == 302
    set_cookie = response.headers["Set-Cookie"]
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    plain = app.test_client().get("/auth/login")
    assert "Secure" not in plain.headers["Set-Cookie"]


def test_without_public_url_an_unlisted_host_gets_no_redirect_uri(
    make_sso_app: Callable[..., Flask], keycloak: KeycloakSim
) -> None:
    app = make_sso_app(lambda c: c["auth"]["oidc"].update(allowed_hosts=["portal.example"]))
    foreign = app.test_client().get("/auth/login", headers={"Host": "evil.example"})
    assert foreign.status_code == 400
    assert "evil.example" not in foreign.headers.get("Location", "")
    assert "evil.example" not in foreign.get_data(as_text=True)
    assert "redirect_uri" not in foreign.get_data(as_text=True)
    listed = app.test_client().get("/auth/login", headers={"Host": "portal.example"})
    assert listed.status_code == 302
    query = parse_qs(urlsplit(listed.headers["Location"]).query)
    assert query["redirect_uri"] == ["http://portal.example/auth/callback"]


def test_the_cookie_is_secure_when_the_public_url_is_https(make_sso_app: Callable[..., Flask]) -> None:
    app = make_sso_app(lambda c: c["auth"]["oidc"].update(public_url="https://portal.example.org"))
    response = app.test_client().get("/auth/login")
    assert "Secure" in response.headers["Set-Cookie"]
    assert "redirect_uri=https%3A%2F%2Fportal.example.org%2Fauth%2Fcallback" in response.headers["Location"]


def test_the_login_pages_hold_a_strict_csp(sso_app: Flask) -> None:
    client = sso_app.test_client()
    for path in ("/auth/logged-out", "/auth/callback?state=nope&code=x", "/auth/login?next=/"):
        finder = _InlineFinder()
        finder.feed(client.get(path).get_data(as_text=True))
        assert finder.problems == []


def test_a_live_server_helper_serves_concurrently(sso_app: Flask) -> None:
    with serve(sso_app) as url:
        assert requests.get(f"{url}/healthz", timeout=10).json() == {"status": "ok"}


def test_keycloak_not_answering_is_told_from_keycloak_not_listening() -> None:
    """python-keycloak says "Can't connect to server" for both; the metrics' outcome tells a
    Keycloak that never answered (`timeout`) from one nothing listens for (`unreachable`)."""
    outcomes: list[str] = []

    def discovery_from(port: int) -> None:
        settings = OidcSection(
            server_url=f"http://127.0.0.1:{port}/", realm="r", client_id="c", timeout=1, allowed_hosts=("x",)
        )
        with pytest.raises(ProviderUnavailable):
            OidcClient(settings, "secret", observe=lambda outcome, _: outcomes.append(outcome)).discovery()

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        discovery_from(silent.getsockname()[1])
    discovery_from(free_port())
    assert outcomes == ["timeout", "unreachable"]
