"""Sessions while the shared store is away: fail closed on revocation, open on availability.

A real Redis is paused (SIGSTOP) and resumed (SIGCONT) under the portal, served with single
sign-on against the Keycloak-shaped provider. And what a shared Redis may hold: nothing the
portal did not write is read, nothing in it runs code.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from portal.caching.broadcast import DEAF_AFTER
from portal.caching.codec import Codec, ValueRefused
from portal.state import portal_state
from portal.upstreams.http import HttpLimits
from portal.widgets.status.client import UptimeKumaClient
from simulators.base import SimServer

from .conftest import SECRET
from .support.keycloak import KeycloakSim, csrf_of, login, logout
from .support.live import serve
from .support.processes import RedisServer

pytestmark = pytest.mark.peers


@pytest.fixture
def portal(
    make_sso_app: Callable[..., Flask], redis_server: RedisServer, keycloak: KeycloakSim
) -> Iterator[tuple[str, Flask]]:
    """The portal with Redis, served on loopback, Keycloak's back-channel logout pointed at it."""

    def changes(config: dict[str, Any]) -> None:
        config["cache"]["redis_url"] = redis_server.url
        config["auth"]["oidc"]["outage_grace"] = 120

    app = make_sso_app(changes)
    with serve(app) as url:
        keycloak.backchannel(f"{url}/auth/backchannel-logout")
        yield url, app


def _status(browser: requests.Session, url: str) -> int:
    return browser.get(f"{url}/", allow_redirects=False, timeout=15).status_code


def test_a_logged_out_session_stays_out_while_redis_is_away(
    portal: tuple[str, Flask], redis_server: RedisServer
) -> None:
    url, _ = portal
    with requests.Session() as alice:
        login(alice, url, "alice")
        cookie = alice.cookies.get("portal_session")
        logout(alice, url)
        redis_server.pause()
        try:
            with requests.Session() as replay:
                replay.cookies.set("portal_session", cookie)
                assert _status(replay, url) == 302  # the old cookie does not come back to life
        finally:
            redis_server.resume()


def test_a_live_session_goes_on_for_the_grace_then_not(
    make_sso_app: Callable[..., Flask], redis_server: RedisServer, keycloak: KeycloakSim
) -> None:
    def grace(seconds: int) -> Callable[[dict[str, Any]], None]:
        def change(config: dict[str, Any]) -> None:
            config["cache"]["redis_url"] = redis_server.url
            config["auth"]["oidc"]["outage_grace"] = seconds

        return change

    for seconds, expected in ((120, 200), (0, 302)):
        with serve(make_sso_app(grace(seconds))) as url, requests.Session() as alice:
            login(alice, url, "alice")
            redis_server.pause()
            try:
                # Until the worker's channel has gone unanswered for DEAF_AFTER, the record it
                # kept is trusted (a Redis that hangs does not say so); after, the outage counts.
                time.sleep(DEAF_AFTER + 0.5)
                assert _status(alice, url) == expected, f"grace {seconds} s"
            finally:
                redis_server.resume()


def test_a_logout_during_the_outage_is_not_undone_when_redis_returns(
    portal: tuple[str, Flask], redis_server: RedisServer
) -> None:
    url, _ = portal
    raw = redis.Redis.from_url(redis_server.url)
    with requests.Session() as alice:
        login(alice, url, "alice")
        page = alice.get(f"{url}/", timeout=15).text
        cookie = alice.cookies.get("portal_session")
        (key,) = raw.scan_iter("portal:auth:session:*")
        record = raw.get(key)
        redis_server.pause()
        try:
            leaving = alice.post(
                f"{url}/auth/logout", data={"csrf_token": csrf_of(page), "next": "/"}, timeout=15
            )
            assert leaving.status_code == 200
        finally:
            redis_server.resume()
    # A paused Redis runs the delete it had waiting in its socket when it resumes; a Redis that
    # really went away would not have it. Put the record back, as if the delete had been lost.
    raw.set(key, record)
    with requests.Session() as replay:
        replay.cookies.set("portal_session", cookie)
        assert _status(replay, url) == 302  # refused at once (the pod's ledger)
        time.sleep(5.5)  # the portal tries Redis again after 5 s, and tells it
        assert [_status(replay, url) for _ in range(3)] == [302, 302, 302]
    assert raw.get(key) is None  # the end reached Redis itself: every replica knows


def test_a_back_channel_logout_during_the_outage_ends_the_session_now_and_after(
    portal: tuple[str, Flask], redis_server: RedisServer, keycloak: KeycloakSim
) -> None:
    url, _ = portal
    with requests.Session() as alice, requests.Session() as bob:
        login(alice, url, "alice")
        login(bob, url, "bob")
        redis_server.pause()
        try:
            assert keycloak.sign_out("alice") >= 1  # Keycloak calls the portal's back-channel URL
            assert _status(alice, url) == 302  # ended at once, though Redis is away
            assert _status(bob, url) == 200  # the others go on
        finally:
            redis_server.resume()
        time.sleep(5.5)
        assert _status(alice, url) == 302
        assert _status(bob, url) == 200


# --- what a shared Redis may hold ----------------------------------------------------------------


class _Trap:
    """Unpickling this runs code: it touches a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


def test_a_crafted_pickle_or_a_forged_entry_in_redis_is_refused_and_runs_nothing(
    make_app: Callable[..., Flask], redis_server: RedisServer, kuma: SimServer, tmp_path: Path
) -> None:
    app = make_app(lambda c: c["cache"].update(redis_url=redis_server.url))
    key_prefix = portal_state(app).settings.config.cache.key_prefix
    raw = redis.Redis.from_url(redis_server.url)
    marker = tmp_path / "ran"
    page = UptimeKumaClient(requests.Session(), kuma.url, None, HttpLimits()).status_page("platform")
    forged = Codec("another application's secret").dumps(page)
    raw.set(f"{key_prefix}widget:status:shared:platform", pickle.dumps(_Trap(marker)))
    raw.set(f"{key_prefix}widget:status:shared:observability", forged)
    client = app.test_client()
    for _ in range(20):
        html = client.get("/widgets/status").get_data(as_text=True)
        if 'data-poll="soon"' not in html:
            break
        time.sleep(0.1)
    assert not marker.exists()  # nothing ran
    assert "is-ok" in html  # both keys read as misses and fetched anew
    assert kuma.count("/api/status-page/platform") == 2 and kuma.count("/api/status-page/observability") == 1
    with pytest.raises(ValueRefused):
        Codec(SECRET).loads(forged)


def test_tokens_are_encrypted_at_rest(portal: tuple[str, Flask], redis_server: RedisServer) -> None:
    url, _ = portal
    with requests.Session() as alice:
        login(alice, url, "alice")
    raw = redis.Redis.from_url(redis_server.url)
    records = [raw.get(key) for key in raw.scan_iter("portal:auth:session:*")]
    assert records
    for record in records:
        assert b"refresh_token" in record
        assert b"eyJ" not in record  # no JWT in clear (they all start with eyJ)
