"""The shell: tiles, cards, language, theme, and a page a strict CSP can hold."""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import Client

from portal.observability.build import PACKAGE_DIR
from portal.state import portal_state
from portal.web import security
from portal.web.security import CSP
from simulators.base import SimServer

from .support.releases import MARK, ONLY_THERE, RoundRobin, other_release


def _page(client: FlaskClient, **headers: str) -> str:
    response = client.get("/", headers=headers)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_shell_makes_no_upstream_call(client: FlaskClient, kuma: SimServer) -> None:
    html = _page(client, **{"Accept-Language": "en"})
    assert kuma.count() == 0
    assert 'hx-get="/widgets/status"' in html
    assert 'hx-trigger="load, poll"' in html
    assert 'data-interval="30"' in html
    assert "widget-skeleton" in html  # the card starts as a skeleton


def test_the_shell_includes_the_same_card_template(client: FlaskClient) -> None:
    html = _page(client)
    body = re.search(
        r'<div class="widget-card__body".*?>(.*?)</div>\s*<p class="widget-card__kept"', html, re.S
    )
    assert body
    assert 'class="widget-content is-loading"' in body.group(1)


STATUS_BODY = re.compile(
    r'<div class="widget-card__body" id="widget-status-body"(.*?)</div>\s*<p class="widget-card__kept"', re.S
)
EN = {"Accept-Language": "en"}


def test_a_card_whose_data_is_fresh_in_the_cache_is_drawn_with_it(
    client: FlaskClient, kuma: SimServer
) -> None:
    """Someone's card fetched the data a moment ago: the page shows it at once, fetching
    nothing, and the card's first poll finds it has that version (a 204)."""
    polled = client.get("/widgets/status", headers=EN)
    calls = kuma.count()
    html = _page(client, **EN)
    assert kuma.count() == calls  # the page still fetches nothing
    body = STATUS_BODY.search(html)
    assert body, "the status card's body"
    assert "is-loading" not in body.group(1) and "SonarQube" in body.group(1)
    assert 'hx-trigger="poll"' in body.group(1)  # no first request: it polls at its interval
    version = polled.headers["X-Widget-Version"]
    assert f'data-version="{version}"' in body.group(1)
    fetched = polled.headers["X-Widget-Fetched-At"]
    assert f'<p class="widget-card__checked" data-fetched-at="{fetched}"' in html
    again = client.get("/widgets/status", headers={**EN, "X-Widget-Version": version})
    assert again.status_code == 204
    # Both answers name the release that drew them, as the page does (portal.js compares them).
    build = re.search(r'<body [^>]*data-build="([0-9a-f]{12})"', html)
    assert build and polled.headers["X-Portal-Build"] == again.headers["X-Portal-Build"] == build.group(1)


def test_a_card_whose_data_is_past_its_ttl_or_failing_starts_as_a_skeleton(
    make_app: Callable[..., Flask], kuma: SimServer
) -> None:
    client = make_app(lambda config: config["widgets"]["status"].update(ttl=1)).test_client()
    client.get("/widgets/status", headers=EN)
    time.sleep(1.1)
    body = STATUS_BODY.search(_page(client, **EN))
    assert body and "widget-skeleton" in body.group(1) and 'hx-trigger="load, poll"' in body.group(1)
    kuma.set_fault("error500")
    failing = make_app().test_client()
    assert "Data unavailable" in failing.get("/widgets/status", headers=EN).get_data(as_text=True)
    body = STATUS_BODY.search(_page(failing, **EN))
    assert body and "widget-skeleton" in body.group(1)  # an error is the card's own answer to give


def test_a_card_not_configured_says_so_in_the_page(client: FlaskClient) -> None:
    """Nothing to wait for (no Prometheus here): no skeleton, no request, no polling."""
    html = _page(client, **EN)
    body = re.search(r'id="widget-metrics-body"(.*?)</div>\s*<p class="widget-card__kept"', html, re.S)
    assert body and "Not configured" in body.group(1) and "upstreams.prometheus" in body.group(1)
    assert 'hx-trigger="poll"' in body.group(1) and 'data-poll="stop"' in body.group(1)


def test_tiles_follow_the_config(client: FlaskClient) -> None:
    html = _page(client, **{"Accept-Language": "en"})
    names = re.findall(r'<span class="tool-tile__name[^"]*">([^<]+)<', html)
    assert names == [
        "GitLab",
        "Harbor",
        "Taiga",
        "Mattermost",
        "Grafana",
        "SonarQube",
        "Vault",
        "Argo CD",
        "HedgeDoc",
    ]
    assert 'href="https://gitlab.example.org/"' in html
    assert "Container registry with vulnerability scanning" in html
    assert '<img src="/static/icons/taiga.svg"' in html  # a custom icon path
    assert re.search(r'<svg viewBox="0 0 24 24" class="brand-icon"><path d="m23\.6', html)  # inline GitLab
    assert 'id="tile-dot-gitlab"' in html  # a live dot for tiles naming a monitor
    assert 'id="tile-filter"' in html


def test_tiles_hidden_by_roles(make_app: Callable[..., Flask]) -> None:
    def restrict(config: dict[str, Any]) -> None:
        config["tiles"][0]["roles"] = ["release-managers"]

    html = _page(make_app(restrict).test_client())
    assert "gitlab.example.org" not in html
    assert "harbor.example.org" in html


def test_a_person_who_may_see_no_tool_is_not_told_that_none_is_configured(
    make_app: Callable[..., Flask],
) -> None:
    def every_tile_for_release_managers(config: dict[str, Any]) -> None:
        for tile in config["tiles"]:
            tile["roles"] = ["release-managers"]

    html = _page(make_app(every_tile_for_release_managers).test_client(), **EN)
    assert "No tools are available to you." in html and "No tools are configured." not in html
    assert "No tools are configured." in _page(
        make_app(lambda c: c.update(tiles=[], layout={})).test_client(), **EN
    )


def test_tile_colours_come_from_a_stylesheet(client: FlaskClient) -> None:
    css = client.get("/tiles.css")
    assert css.status_code == 200
    assert css.mimetype == "text/css"
    assert ".tile--gitlab{--tile-accent:#FC6D26}" in css.get_data(as_text=True)


# --- language ---------------------------------------------------------------------------------


def test_french_from_the_browser(client: FlaskClient) -> None:
    html = _page(client, **{"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr"' in html
    for words in (
        "Outils",
        "Tableau de bord",
        "État des services",
        "Filtrer les outils",
        "Registre d’images",
    ):
        assert words in html
    for english in ("Dashboard", "Tools<", "Service status", "Filter tools"):
        assert english not in html


def test_english_from_the_browser(client: FlaskClient) -> None:
    html = _page(client, **{"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en"' in html
    for words in ("Tools", "Dashboard", "Service status", "Filter tools", "Container registry"):
        assert words in html
    assert "Tableau de bord" not in html


def test_default_language_is_the_configured_one(client: FlaskClient) -> None:
    assert '<html lang="fr"' in _page(client, **{"Accept-Language": "de-DE"})


def test_the_language_switch_persists_and_returns(client: FlaskClient) -> None:
    response = client.get("/preferences/language/en?next=/%3Fx%3D1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/?x=1"
    assert "portal_lang=en" in response.headers["Set-Cookie"]
    assert '<html lang="en"' in _page(client, **{"Accept-Language": "fr"})
    assert client.get("/preferences/language/de").status_code == 404


@pytest.mark.parametrize(
    "target", ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", ""]
)
def test_switches_never_redirect_elsewhere(client: FlaskClient, target: str) -> None:
    for path in ("/preferences/language/fr", "/preferences/theme/dark"):
        response = client.get(path, query_string={"next": target})
        assert response.headers["Location"] == "/"


def test_fragments_speak_the_users_language(client: FlaskClient) -> None:
    fr = client.get("/widgets/status", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    en = client.get("/widgets/status", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Opérationnel" in fr and "En panne" in fr and "Disponibilité sur 24\u00a0heures" in fr
    assert re.search(r"\d+,\d\u202f%|\d+\u00a0%|100\u202f%", fr)  # French percent format
    assert "Up<" in en and "Down<" in en
    assert re.search(r"\d+\.\d%", en)


# --- theme ---------------------------------------------------------------------------------------


def test_theme_follows_the_system_by_default(client: FlaskClient) -> None:
    html = _page(client)
    assert "data-theme=" not in html.split(">", 2)[1]  # <html> carries no theme
    assert 'data-theme-current="system"' in html


def test_a_chosen_theme_is_rendered_before_the_first_paint(client: FlaskClient) -> None:
    response = client.get("/preferences/theme/dark?next=/")
    assert "portal_theme=dark" in response.headers["Set-Cookie"]
    html = _page(client)
    assert re.search(r'<html lang="\w+" data-theme="dark">', html)
    assert 'data-theme-current="dark"' in html
    client.get("/preferences/theme/system")
    assert "data-theme=" not in _page(client).split(">", 2)[1]


# --- a page a strict CSP can hold -------------------------------------------------------------


class _InlineFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        if "style" in names:
            self.problems.append(f"style attribute on <{tag}>")
        if any(name.startswith("on") for name in names):
            self.problems.append(f"event handler attribute on <{tag}>")
        if "hx-on" in " ".join(names):
            self.problems.append("hx-on attribute (needs eval)")


@pytest.mark.parametrize("path", ["/", "/widgets/status"])
def test_no_inline_script_or_style(client: FlaskClient, path: str) -> None:
    finder = _InlineFinder()
    finder.feed(client.get(path).get_data(as_text=True))
    assert finder.problems == []


def test_security_headers(client: FlaskClient) -> None:
    response = client.get("/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in response.headers  # only behind TLS
    secure = client.get("/", base_url="https://portal.example")
    assert "max-age" in secure.headers["Strict-Transport-Security"]


def test_every_answer_with_a_body_carries_the_security_headers(client: FlaskClient) -> None:
    poll = client.get("/widgets/status", headers={"HX-Request": "true"})
    assert poll.status_code == 200 and poll.headers["Cache-Control"] == "no-store"
    assert poll.headers["Content-Security-Policy"] == CSP and poll.headers["X-Frame-Options"] == "DENY"
    assert poll.headers["X-Content-Type-Options"] == "nosniff"
    page = client.get("/", headers={"HX-Request": "true"})
    assert page.headers["Content-Security-Policy"] == CSP
    unchanged = client.get(
        "/widgets/status",
        headers={"HX-Request": "true", "X-Widget-Version": poll.headers["X-Widget-Version"]},
    )
    assert unchanged.status_code == 204 and "Content-Security-Policy" not in unchanged.headers  # no body


def test_htmx_is_configured_for_the_csp(client: FlaskClient) -> None:
    html = _page(client)
    assert '"includeIndicatorStyles": false' in html
    assert '"allowEval": false' in html


def test_csp_reports_are_logged(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    report = {"csp-report": {"violated-directive": "style-src", "blocked-uri": "inline"}}
    assert client.post("/csp-report", json=report).status_code == 204
    assert "content security policy violation" in caplog.text


def test_a_flood_of_csp_reports_is_counted_not_all_written(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone may post a report: a flood of them writes 20 lines a minute, then one that says
    how many were left out."""
    now = [1000.0]
    monkeypatch.setattr(security.time, "monotonic", lambda: now[0])
    report = {"csp-report": {"violated-directive": "style-src", "blocked-uri": "inline"}}
    for _ in range(50):
        assert client.post("/csp-report", json=report).status_code == 204
    lines = [r for r in caplog.records if getattr(r, "event", "") == "csp_violation"]
    assert len(lines) == security.REPORTS_LOGGED
    now[0] += 60
    client.post("/csp-report", json=report)
    last = [r for r in caplog.records if getattr(r, "event", "") == "csp_violation"][-1]
    assert last.reports_left_out == 50 - security.REPORTS_LOGGED  # type: ignore[attr-defined]


def test_static_urls_carry_a_content_hash(client: FlaskClient) -> None:
    html = _page(client)
    assert re.search(r'href="/static/css/portal\.css\?v=[0-9a-f]{10}"', html)
    assert re.search(r'src="/static/vendor/htmx-2\.0\.11/htmx\.min\.js\?v=[0-9a-f]{10}"', html)
    own = re.search(r'href="(/static/css/portal\.css\?v=[0-9a-f]{10})"', html)
    assert own
    with client.get(own.group(1)) as asset:
        assert asset.headers["Cache-Control"] == "public, max-age=31536000"


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("js/portal.js", "The portal's behaviour: the cards' life cycle"),
        ("js/layout.js", "The personal layout editor"),
        ("js/packing.js", "The dashboard's packing"),
        ("js/times.js", "The page's times"),
        ("js/controls.js", "The page's controls"),
        ("js/morph.js", "Calm refreshes"),
        ("js/early.js", "Runs in <head>, before the first paint"),
        ("css/portal.css", "As many columns as fit"),
    ],
)
def test_the_pages_own_scripts_and_stylesheet_are_served_minified(
    client: FlaskClient, path: str, said: str
) -> None:
    """Their comments, written for the next developer, are most of their bytes: not sent."""
    source = (PACKAGE_DIR / "static" / path).read_text(encoding="utf-8")
    assert said in source  # the comment this test looks for is still in the source
    version = re.search(rf'"/static/{re.escape(path)}\?v=([0-9a-f]{{10}})"', _page(client))
    assert version, path
    url = f"/static/{path}?v={version.group(1)}"
    with client.get(url) as answer:
        body = answer.get_data(as_text=True)
        assert answer.status_code == 200 and answer.mimetype in ("text/javascript", "text/css")
        assert said not in body and "\n  " not in body
        assert len(body) < 0.8 * len(source), (len(body), len(source))
        assert answer.headers["Cache-Control"] == "public, max-age=31536000"
        etag = answer.headers["ETag"]
    with client.get(url, headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304  # a reload revalidates it for nothing
    with client.get(url, headers={"Accept-Encoding": "gzip"}) as compressed:
        assert compressed.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(compressed.get_data()).decode() == body


def test_a_static_file_is_kept_only_under_its_own_version(client: FlaskClient) -> None:
    """During a rolling upgrade an old pod may answer a new page's URL with its older file:
    that answer is served, but never kept a year under the new release's URL."""
    html = _page(client)
    for path in ("css/portal.css", "js/portal.js", "icons/ui.svg"):
        own = re.search(rf'"/static/{re.escape(path)}\?v=([0-9a-f]{{10}})["#]', html)
        assert own, path
        for other in (f"?v={'0' * 10}&try=3", ""):  # another release's, asked thrice; or none
            with client.get(f"/static/{path}{other}") as answer:
                assert answer.status_code == 200
                assert "max-age=31536000" not in answer.headers["Cache-Control"], (path, other)
                assert "no-cache" in answer.headers["Cache-Control"]
                assert answer.headers["ETag"]  # revalidated, then
        with client.get(f"/static/{path}?v={own.group(1)}") as kept:
            assert "max-age=31536000" in kept.headers["Cache-Control"]


def test_during_a_rollout_a_stylesheet_of_the_other_release_is_asked_for_again(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    """A page drawn by one release asks for its stylesheet; the Service sends the request to a
    pod of the other release. That pod sends the browser to ask again (307, no-store), the next
    request reaches a pod of the page's release, and the page gets its own stylesheet, kept."""
    new, old = make_app(), other_release(make_app(), tmp_path)
    own_css = {}
    for name, pod in (("new", new), ("old", old)):
        found = re.search(r'href="(/static/css/portal\.css\?v=[0-9a-f]{10})"', _page(pod.test_client()))
        assert found
        own_css[name] = found.group(1)
    assert own_css["new"] != own_css["old"]
    for page_of, first, second in (("new", old, new), ("old", new, old)):
        service = RoundRobin(first, second)  # the stylesheet's request reaches the other release
        browser = Client(service)
        redirected = browser.get(own_css[page_of])
        assert redirected.status_code == 307 and redirected.headers["Cache-Control"] == "no-store"
        answer = browser.get(own_css[page_of], follow_redirects=True)
        assert answer.status_code == 200 and service.served[-1] == 1
        assert (MARK.encode() in answer.get_data()) == (page_of == "old")
        assert answer.headers["Cache-Control"] == "public, max-age=31536000"
        answer.close()
    only_old = f"/static/{ONLY_THERE}?v={portal_state(old).static_versions[ONLY_THERE]}"
    found = Client(RoundRobin(new, old)).get(only_old, follow_redirects=True)
    assert found.status_code == 200 and MARK.encode() in found.get_data()  # not new's 404
    found.close()
    # Once the page's release is gone, a few asks later it gets this release's file, not kept.
    gone = Client(RoundRobin(new))
    last = gone.get(own_css["old"], follow_redirects=True)
    assert last.status_code == 200 and len(last.history) == 3
    assert MARK.encode() not in last.get_data() and "no-cache" in last.headers["Cache-Control"]
    last.close()


def test_the_tiles_stylesheet_is_kept_only_under_its_own_version(client: FlaskClient) -> None:
    html = _page(client)
    own = re.search(r'href="(/tiles\.css\?v=[0-9a-f]{12})"', html)
    assert own
    kept = client.get(own.group(1))
    assert kept.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    other = client.get(f"/tiles.css?v={'0' * 12}")
    assert other.status_code == 200
    assert other.get_data() == kept.get_data()
    assert other.headers["Cache-Control"] == "private, no-cache"


def test_unknown_pages_are_404(client: FlaskClient) -> None:
    assert client.get("/nope").status_code == 404


def test_the_page_names_its_viewer_by_a_digest_that_differs_per_person(
    make_app: Callable[..., Flask],
) -> None:
    """portal.js keeps the rows a person has seen in the browser under this key (someone else
    signing in there starts afresh): one per person, and not their subject, name or e-mail."""
    app = make_app()
    keys = []
    for username, subject in (("camille", "demo-0001"), ("dominique", "demo-0002")):
        client = app.test_client()
        assert client.get(f"/auth/demo-user/{username}").status_code == 303
        page = _page(client)
        found = re.search(r'data-viewer="([0-9a-f]{16})"', page)
        assert found and subject not in found.group(0) and username not in found.group(0)
        assert f'data-viewer="{found.group(1)}"' in _page(client)  # the same at every page
        keys.append(found.group(1))
    assert keys[0] != keys[1]
