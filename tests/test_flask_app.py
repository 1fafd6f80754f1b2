"""The portal's Flask and request classes keep per-worker answers that must never mix requests."""

from __future__ import annotations

from werkzeug.test import EnvironBuilder

from portal.web.flask_app import PortalFlask, PortalRequest


def _request(cookie: str) -> PortalRequest:
    return PortalRequest(EnvironBuilder(headers={"Cookie": cookie}).get_environ())


def test_each_cookie_header_is_parsed_on_its_own() -> None:
    first = _request("portal_session=abc; portal_lang=fr")
    assert first.cookies["portal_session"] == "abc" and first.cookies["portal_lang"] == "fr"
    second = _request("portal_session=xyz")
    assert second.cookies["portal_session"] == "xyz" and "portal_lang" not in second.cookies
    again = _request("portal_session=abc; portal_lang=fr")
    assert again.cookies is first.cookies  # the same header: the same parsed (immutable) cookies
    assert _request("").cookies == {}


def test_hooks_run_on_every_request_with_the_sync_check_kept() -> None:
    app = PortalFlask(__name__)
    seen: list[str] = []

    @app.before_request
    def _before() -> None:
        seen.append("before")

    @app.get("/")
    def index() -> str:
        return "ok"

    client = app.test_client()
    assert client.get("/").get_data(as_text=True) == "ok"
    assert client.get("/").get_data(as_text=True) == "ok"
    assert seen == ["before", "before"]
    assert app.ensure_sync(index) is index  # a plain function is called as it is, once checked
