"""Each upstream fault gives a clear message, over real HTTP against the simulator.

Two levels: the bounded JSON fetch raises the right UpstreamError quickly, and the widget
endpoint turns it into a 200 fragment that says what failed, keeps the last good data as
stale, and leaves the shell and the other parts of the card alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask

from portal.state import portal_state
from portal.upstreams.errors import (
    UpstreamAuthError,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRedirected,
    UpstreamUnavailable,
)
from portal.upstreams.http import BoundedJsonClient, HttpLimits, redact_url
from simulators.base import SimServer, wait_until

from .support.processes import free_port
from .test_i18n import shown_text

PAGE = "/api/status-page/platform"
ASKS_FOR_A_LOGIN = "Kuma asks for a login the portal does not have"


def _getter(timeout: float = 1.0, max_bytes: int = 200_000) -> BoundedJsonClient:
    return BoundedJsonClient("Kuma", requests.Session(), HttpLimits(timeout, 0.5, max_bytes))


@pytest.mark.parametrize(
    ("mode", "options", "error", "words", "outcome"),
    [
        ("timeout", {"seconds": 5}, UpstreamUnavailable, "did not answer within 1 s", "timeout"),
        ("error500", {}, UpstreamUnavailable, "Kuma answered HTTP 500", "server_error"),
        ("unauthorized", {}, UpstreamAuthError, f"{ASKS_FOR_A_LOGIN} (HTTP 401)", "auth"),
        ("forbidden", {}, UpstreamAuthError, f"{ASKS_FOR_A_LOGIN} (HTTP 403)", "auth"),
        ("refused", {"seconds": 1}, UpstreamUnavailable, "Kuma cannot be reached", "unreachable"),
        ("notfound", {}, UpstreamBadResponse, "answered HTTP 404 (not found)", "bad_response"),
        ("garbage", {}, UpstreamBadResponse, "not valid JSON", "bad_response"),
        ("oversize", {"size": 300_000}, UpstreamBadResponse, "larger than 200 kB", "bad_response"),
        ("slow", {"interval": 0.2}, UpstreamUnavailable, "too slow", "timeout"),
    ],
)
def test_each_fault_raises_its_error_within_the_deadline(
    kuma: SimServer, mode: str, options: dict[str, Any], error: type[UpstreamError], words: str, outcome: str
) -> None:
    """Each fault its words for the card and its outcome for the metrics and the log (an SRE
    tells a timeout from a refused connection or a 5xx without reading the lines)."""
    kuma.set_fault(mode, **options)
    started = time.monotonic()
    with pytest.raises(error) as raised:
        _getter().get(kuma.url + PAGE)
    elapsed = time.monotonic() - started
    assert words in str(raised.value) and raised.value.outcome == outcome
    assert elapsed < 1.0 + 0.5, f"{mode} took {elapsed:.2f} s"
    if mode == "refused":  # the port listens again by itself, the fault over
        assert wait_until(lambda: _reachable(kuma.url + PAGE), timeout=10)
        assert kuma.faults.mode == "none"


def _reachable(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.mark.parametrize(
    "credential", [{"Authorization": "Bearer t0ken"}, {"PRIVATE-TOKEN": "t0ken"}, {"Cookie": "s=1"}]
)
def test_a_refusal_of_a_call_that_carried_credentials_blames_them(
    kuma: SimServer, credential: dict[str, str]
) -> None:
    """Without credentials a 401 asks for a login (a public API put behind one); with them, the
    admin is sent to the portal's token or password."""
    kuma.set_fault("unauthorized")
    client = BoundedJsonClient("Kuma", requests.Session(), HttpLimits(1.0, 0.5, 200_000), headers=credential)
    with pytest.raises(UpstreamAuthError) as raised:
        client.get(kuma.url + PAGE)
    assert str(raised.value) == "Kuma refused the portal's credentials (HTTP 401)"
    assert "t0ken" not in raised.value.detail


def test_connection_refused_is_unavailable() -> None:
    with pytest.raises(UpstreamUnavailable) as raised:
        _getter().get(f"http://127.0.0.1:{free_port()}{PAGE}")
    assert str(raised.value) == "Kuma cannot be reached"


def test_a_change_that_fails_says_whether_the_upstream_may_have_acted(kuma: SimServer) -> None:
    """A write may have been made when the upstream may have read it and did not refuse it; a
    read never, nor a write whose connection was never made, nor one refused with a 4xx."""
    client = _getter()
    client.get(f"{kuma.url}{PAGE}")  # a connection kept from this read
    kuma.set_fault("refused", seconds=3)  # it is dropped; new ones are refused
    with pytest.raises(UpstreamUnavailable) as on_kept:
        client.request("PATCH", f"{kuma.url}{PAGE}", json_body={})  # goes out on the dropped one
    with pytest.raises(UpstreamUnavailable) as on_new:
        client.request("PATCH", f"{kuma.url}{PAGE}", json_body={})
    assert "cannot be reached" in on_kept.value.message and "cannot be reached" in on_new.value.message
    assert on_kept.value.may_have_acted and not on_new.value.may_have_acted
    wait_until(lambda: _answers(kuma), timeout=10)
    for mode, options, acted in (
        ("timeout", {"seconds": 5}, True),
        ("error500", {}, True),
        ("unauthorized", {}, False),
    ):
        kuma.set_fault(mode, **options)
        for method, expected in (("GET", False), ("POST", acted)):
            with pytest.raises(UpstreamError) as failed:
                client.request(method, f"{kuma.url}{PAGE}", json_body={} if method == "POST" else None)
            assert failed.value.may_have_acted is expected, (mode, method)
    kuma.set_fault("error500")
    with pytest.raises(UpstreamError) as login:  # a POST that changes nothing (a login)
        client.request("POST", f"{kuma.url}{PAGE}", json_body={}, changes=False)
    assert not login.value.may_have_acted
    kuma.set_fault("none")


def _answers(server: SimServer) -> bool:
    try:
        return requests.get(f"{server.url}{PAGE}", timeout=1).status_code < 500
    except requests.RequestException:
        return False


def test_messages_never_carry_credentials_or_query_strings() -> None:
    url = f"http://admin:hunter2@127.0.0.1:{free_port()}/api/x?private_token=glpat-secret"
    with pytest.raises(UpstreamUnavailable) as raised:
        _getter().get(url)
    text = str(raised.value)
    assert "hunter2" not in text and "glpat-secret" not in text and "admin" not in text
    assert redact_url(url) == f"http://127.0.0.1:{url.split(':')[3].split('/')[0]}/api/x"


def test_redirects_are_not_followed(kuma: SimServer) -> None:
    @kuma.route("GET", "/api/moved")
    def moved(request: Any, match: Any) -> Any:
        from simulators.base import SimResponse

        return SimResponse(302, b"", {"Location": "http://169.254.169.254/latest/meta-data"})

    with pytest.raises(UpstreamRedirected) as raised:
        _getter().get(kuma.url + "/api/moved")
    assert str(raised.value) == "Kuma answered HTTP 302" and isinstance(raised.value, UpstreamBadResponse)
    # Where it pointed, for a client to judge (never followed here).
    assert raised.value.location == "http://169.254.169.254/latest/meta-data"


# --- the card ---------------------------------------------------------------------------------


def _card(app: Flask, until: str = "", seconds: float = 6.0) -> str:
    """The card as the browser polls it: again while it says loading (or until `until` shows)."""
    client = app.test_client()
    deadline = time.monotonic() + seconds
    while True:
        response = client.get("/widgets/status", headers={"Accept-Language": "en"})
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        waiting = 'data-poll="soon"' in html or (until and until not in html)
        if not waiting or time.monotonic() > deadline:
            return html
        time.sleep(0.2)


FAULTS = [
    ("timeout", {"seconds": 4}, "did not answer within 1.5 s"),
    ("error500", {}, "Uptime Kuma answered HTTP 500"),
    ("unauthorized", {}, "Uptime Kuma asks for a login the portal does not have (HTTP 401)"),
    ("notfound", {}, "answered HTTP 404 (not found)"),
    ("garbage", {}, "not valid JSON"),
    ("oversize", {"size": 3_000_000}, "larger than 2 MB"),
    ("slow", {"interval": 0.3}, "too slow"),
]


@pytest.mark.parametrize(("mode", "options", "words"), FAULTS)
def test_a_fault_without_previous_data_is_an_error_card(
    make_app: Callable[..., Flask], kuma: SimServer, mode: str, options: dict[str, Any], words: str
) -> None:
    kuma.set_fault(mode, **options)
    html = _card(make_app())
    assert 'class="widget-content is-error"' in html
    assert "Data unavailable" in html
    assert words in html
    assert kuma.url.split("//")[1] not in html and "/api/" not in html  # words, never the upstream's URL


@pytest.mark.parametrize(("mode", "options", "words"), FAULTS)
def test_a_fault_after_good_data_keeps_it_as_stale(
    make_app: Callable[..., Flask], kuma: SimServer, mode: str, options: dict[str, Any], words: str
) -> None:
    app = make_app(lambda c: c["widgets"]["status"].update(ttl=1))
    assert "is-ok" in _card(app)
    kuma.set_fault(mode, **options)
    time.sleep(1.05)

    html = _card(app, until="is-stale")

    assert 'class="widget-content is-stale"' in html
    assert re.search(r"Data from <time datetime=\"[^\"]+\" title=\"[^\"]+\">\d{1,2}:\d\d(\s[AP]M)?</", html)
    assert html.count('class="status-group is-stale"') >= 1  # the rows kept from before are muted
    assert 'class="status-summary is-stale"' in html  # and so are their counts
    assert re.search(r'class="incident-note is-\w+ is-stale"', html)  # and their incident notes,
    assert not re.search(r'class="incident-note is-\w+"', html)  # every one of them
    assert kuma.url.split("//")[1] not in html
    assert words in html
    assert "SonarQube" in html and "GitLab" in html  # the last good data is still there


def test_a_dead_upstream_leaves_the_shell_alone(make_app: Callable[..., Flask]) -> None:
    app = make_app(lambda c: c["upstreams"]["uptime_kuma"].update(url=f"http://127.0.0.1:{free_port()}"))
    client = app.test_client()
    page = client.get("/", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "GitLab" in page.get_data(as_text=True)  # tiles come from config, not upstreams
    html = _card(app)
    assert "is-error" in html and "Uptime Kuma cannot be reached" in html


def test_one_failing_page_leaves_the_other_part_of_the_card(
    make_app: Callable[..., Flask], kuma: SimServer
) -> None:
    kuma.set_fault("error500", only="observability")
    html = _card(make_app())
    assert 'class="widget-content is-stale"' in html  # partly degraded
    assert "GitLab" in html  # the platform page is shown
    assert "observability" in html and "HTTP 500" in html  # and the failing page is named
    assert "Unavailable" in html
    # Nothing is kept from before: the counts and notes shown are the platform page's, fresh.
    assert 'class="status-summary"' in html and 'class="incident-note is-' in html
    assert "is-stale" not in html.replace('class="widget-content is-stale"', "")


def test_failures_are_not_cached_as_data(make_app: Callable[..., Flask], kuma: SimServer) -> None:
    app = make_app(lambda c: c["cache"].update(failure_hold=0.5))
    kuma.set_fault("error500")
    assert "is-error" in _card(app)
    kuma.reset()
    time.sleep(portal_state(app).cache.failure_hold + 0.1)
    assert "is-ok" in _card(app)


def test_a_failing_upstream_is_not_called_on_every_poll(
    make_app: Callable[..., Flask], kuma: SimServer
) -> None:
    app = make_app(lambda c: c["widgets"]["status"].update(slugs=["platform"]))
    kuma.set_fault("error500")
    for _ in range(20):
        assert "is-error" in _card(app)
    assert kuma.count(PAGE) == 1  # the failure is held for failure_hold seconds


def test_an_unknown_status_page_slug_is_named(make_app: Callable[..., Flask], kuma: SimServer) -> None:
    app = make_app(lambda c: c["widgets"]["status"].update(slugs=["platform", "no-such-page"]))
    html = _card(app)
    assert 'class="widget-content is-stale"' in html  # the known page still shows
    assert "GitLab" in html
    assert "no-such-page: Uptime Kuma answered HTTP 404 (not found)" in html  # each part says its own


@pytest.mark.parametrize(("mode", "options", "words"), FAULTS)
@pytest.mark.parametrize("language", ["en", "fr"])
def test_no_address_reaches_the_words_of_the_card(
    make_app: Callable[..., Flask],
    kuma: SimServer,
    mode: str,
    options: dict[str, Any],
    words: str,
    language: str,
) -> None:
    """Whatever failed, what people read or hear names the tool, never a URL ("HTTP 500 from http://…")."""
    kuma.set_fault(mode, **options)
    client = make_app().test_client()
    html = ""
    for _ in range(40):  # asked again while it says loading, as the browser does
        html = client.get("/widgets/status", headers={"Accept-Language": language}).get_data(as_text=True)
        if 'data-poll="soon"' not in html:
            break
        time.sleep(0.2)
    assert "is-error" in html
    shown = " ".join(shown_text(html))
    assert "Uptime Kuma" in shown
    assert not re.search(r"https?://|127\.0\.0\.1|/api/", shown), shown


def test_an_upstream_down_for_every_part_is_said_once(
    make_app: Callable[..., Flask], kuma: SimServer
) -> None:
    """Both status pages fail alike: one line says so, not one per page with its name."""
    app = make_app(lambda c: c["widgets"]["status"].update(ttl=1))
    assert "is-ok" in _card(app)
    kuma.set_fault("error500")
    time.sleep(1.05)

    html = _card(app, until="is-stale")

    banner = re.search(r'<div class="stale-banner">.*?</div>\s*</div>', html, re.S)
    assert banner is not None
    assert banner.group(0).count("Uptime Kuma answered HTTP 500") == 1
    assert "platform" not in banner.group(0) and "observability" not in banner.group(0)
