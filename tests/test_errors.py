"""Error pages in the portal's look and language, and compressed answers."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.web.security import CSP

from .support.apps import add_failing_routes


@pytest.fixture
def failing_app(make_app: Callable[..., Flask]) -> Flask:
    """The portal with routes that fail the ways real code can (exceptions are handled)."""
    return add_failing_routes(make_app(TESTING=False), "/_fail")


@pytest.mark.parametrize(
    ("path", "code", "english", "french"),
    [
        ("/no-such-page", 404, "Page not found", "Page introuvable"),
        ("/_fail/403", 403, "Access denied", "Accès refusé"),
        ("/_fail/500", 500, "Something went wrong", "Une erreur est survenue"),
    ],
)
def test_error_pages_look_like_the_portal_and_speak_its_languages(
    failing_app: Flask, path: str, code: int, english: str, french: str
) -> None:
    client = failing_app.test_client()
    en = client.get(path, headers={"Accept-Language": "en"})
    fr = client.get(path, headers={"Accept-Language": "fr"})
    assert en.status_code == fr.status_code == code
    assert en.mimetype == "text/html"
    assert en.headers["Content-Security-Policy"] == CSP
    assert en.headers["Cache-Control"] == "no-store"
    page_en, page_fr = en.get_data(as_text=True), fr.get_data(as_text=True)
    assert f'<h1 class="error-card__title" id="error-title">{english}</h1>' in page_en
    assert f"<title>{english} · DevSecOps Portal</title>" in page_en
    assert f'id="error-title">{french}</h1>' in page_fr
    assert f"Error {code}" in page_en and f"Erreur {code}" in page_fr
    assert 'class="portal-navbar' in page_en  # the shell around it: navbar, language, theme
    assert 'href="/"' in page_en and "Back to the dashboard" in page_en


def test_a_server_error_gives_a_reference_and_no_detail(failing_app: Flask) -> None:
    response = failing_app.test_client().get(
        "/_fail/500", headers={"X-Request-ID": "req-0123456789", "Accept-Language": "en"}
    )
    page = response.get_data(as_text=True)
    assert "Reference for support: req-0123456789" in page
    assert "a bug, on purpose" not in page and "Traceback" not in page


def test_request_lines_say_an_unknown_urls_path_and_warn_of_a_5xx(
    failing_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """A 404's line names the path (a broken link, a scanner), never its query; a 500's line is a
    warning, so that a filter on the level finds it."""
    client = failing_app.test_client()
    with caplog.at_level(logging.DEBUG, logger="portal.access"):
        client.get("/no-such-page?token=s3cret")
        client.get("/_fail/500")
    lines = {r.status: r for r in caplog.records if getattr(r, "event", "") == "request"}  # type: ignore[attr-defined]
    missing, failed = lines[404], lines[500]
    assert missing.route is None and missing.path == "/no-such-page"  # type: ignore[attr-defined]
    assert "s3cret" not in str(vars(missing))
    assert missing.levelno == logging.INFO
    assert failed.levelno == logging.WARNING and failed.route == "/_fail/500"  # type: ignore[attr-defined]
    assert not hasattr(failed, "path")


def test_a_secret_in_a_mistyped_url_is_masked_in_the_log(
    failing_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """A calendar feed's address cut short (no ".ics") matches no route: its token is not logged."""
    token = "-1ofTupxs6yO5qBewJRKsXbC2n_bqk5B"
    client = failing_app.test_client()
    with caplog.at_level(logging.DEBUG, logger="portal.access"):
        client.get(f"/feeds/taiga/{token}")
        client.get(f"/feeds/taiga/{token}.ics/x")
        client.get("/wp-admin/setup-config.php")
        client.get(f"/auth/{token}")  # any long opaque segment
    paths = [r.path for r in caplog.records if getattr(r, "event", "") == "request"]  # type: ignore[attr-defined]
    assert paths == [
        "/feeds/taiga/<token>",
        "/feeds/taiga/<token>.ics/x",
        "/wp-admin/setup-config.php",
        "/auth/…",
    ]
    assert token not in caplog.text


def test_other_errors_keep_their_code_and_headers(failing_app: Flask) -> None:
    response = failing_app.test_client().post("/")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    assert "Requête non traitée" in response.get_data(as_text=True)  # the default language


def test_redirects_are_not_error_pages(failing_app: Flask) -> None:
    response = failing_app.test_client().get("/preferences/theme/dark?next=/")
    assert response.status_code == 303


def test_pages_and_assets_are_compressed(client: FlaskClient) -> None:
    page = client.get("/", headers={"Accept-Encoding": "gzip, br"})
    assert page.headers["Content-Encoding"] in {"br", "gzip"}
    assert "Accept-Encoding" in page.headers["Vary"]
    css = client.get("/static/vendor/bulma-1.0.4/bulma.portal.min.css", headers={"Accept-Encoding": "br"})
    assert css.headers["Content-Encoding"] == "br"
    assert int(css.headers["Content-Length"]) == len(css.get_data()) < 12_000  # 64 kB as written
    css.close()
    plain = client.get("/", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers


def test_an_unchanged_widget_answer_stays_empty(client: FlaskClient) -> None:
    first = client.get("/widgets/status", headers={"Accept-Encoding": "br"})
    # The body depends on the language and the encoding asked for: a shared cache must know.
    assert {"Accept-Language", "Accept-Encoding"} <= set(first.headers["Vary"].replace(" ", "").split(","))
    again = client.get(
        "/widgets/status",
        headers={"Accept-Encoding": "br", "X-Widget-Version": first.headers["X-Widget-Version"]},
    )
    assert again.status_code == 204
    assert again.get_data() == b""
    assert "Content-Encoding" not in again.headers
    # Only what a poll needs: no document headers, no body headers, no Vary (the bytes of every poll).
    for name in ("Content-Security-Policy", "X-Frame-Options", "Content-Type", "Vary", "Referrer-Policy"):
        assert name not in again.headers
    assert again.headers["X-Widget-Version"] == first.headers["X-Widget-Version"]
