"""The demo identity: visibly marked, two users with different roles, and never with single sign-on."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

TILES = re.compile(r'<span class="tool-tile__name[^"]*">([^<]+)<')
TILES_CSS = re.compile(r'href="(/tiles\.css\?v=[0-9a-f]+)"')


def _admin_only_status(config: dict[str, Any]) -> None:
    config["widgets"]["status"]["roles"] = ["portal-admin"]


def test_the_demo_user_is_marked(make_app: Callable[..., Flask]) -> None:
    page = make_app().test_client().get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Camille Demo" in page
    assert page.count('class="tag is-warning is-light demo-badge"') == 1  # one demo marker, not two
    assert "Demo: act as" in page and "Dominique Demo" in page
    assert "/auth/logout" not in page  # nothing to sign out of


def test_switching_demo_users_shows_what_roles_change(make_app: Callable[..., Flask]) -> None:
    client = make_app(_admin_only_status).test_client()
    admin = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert len(TILES.findall(admin)) == 9 and 'id="widget-status"' in admin

    switched = client.get("/auth/demo-user/dominique?next=/%3Fx%3D1")
    assert switched.status_code == 303 and switched.headers["Location"] == "/?x=1"
    member = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Dominique Demo" in member
    assert "Vault" not in TILES.findall(member) and len(TILES.findall(member)) == 7
    assert 'id="widget-status"' not in member
    assert client.get("/widgets/status").status_code == 403

    client.get("/auth/demo-user/camille")
    assert client.get("/widgets/status").status_code == 200


def test_the_dashboard_is_never_stored_and_the_tile_stylesheet_is_each_users_own(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app().test_client()
    page = client.get("/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    admin = client.get(TILES_CSS.findall(page.get_data(as_text=True))[0])
    assert ".tile--vault{" in admin.get_data(as_text=True) and ".tile--argo-cd{" in admin.get_data(
        as_text=True
    )

    client.get("/auth/demo-user/dominique")  # portal-user only: Vault and Argo CD are portal-admin's
    page = client.get("/")
    assert page.headers["Cache-Control"] == "no-store"
    member = client.get(TILES_CSS.findall(page.get_data(as_text=True))[0])
    css = member.get_data(as_text=True)
    assert member.status_code == 200 and ".tile--gitlab{" in css
    assert "vault" not in css and "argo" not in css
    for answer in (admin, member):
        directives = {d.strip() for d in answer.headers["Cache-Control"].split(",")}
        assert "private" in directives and "public" not in directives


@pytest.mark.parametrize("target", ["https://evil.example", "//evil.example"])
def test_the_demo_switch_never_redirects_elsewhere(make_app: Callable[..., Flask], target: str) -> None:
    response = make_app().test_client().get("/auth/demo-user/dominique", query_string={"next": target})
    assert response.headers["Location"] == "/"


def test_unknown_demo_users_and_sso_mode_have_no_switch(
    make_app: Callable[..., Flask], make_sso_app: Callable[..., Flask]
) -> None:
    assert make_app().test_client().get("/auth/demo-user/mallory").status_code == 404
    assert make_sso_app().test_client().get("/auth/demo-user/camille").status_code == 404
    assert make_app().test_client().get("/auth/callback?code=x&state=y").status_code == 404


def test_demo_mode_warns_at_start(make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture) -> None:
    make_app()
    assert any("demo identity is on" in r.getMessage() for r in caplog.records)


def test_a_cookie_decoded_once_is_still_checked_every_time(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    client = app.test_client()

    def tiles() -> int:  # the member sees 7 tiles, the default demo user (an admin) 9
        return len(TILES.findall(client.get("/").get_data(as_text=True)))

    client.get("/auth/demo-user/dominique")
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    assert tiles() == 7
    assert tiles() == 7  # the decoded cookie, kept
    page = client.get("/")
    assert "Cookie" in page.headers["Vary"]  # the page depends on it, even with no cookie written
    assert "Set-Cookie" not in page.headers
    # An altered cookie is another value: checked in full and refused (back to the default user).
    client.set_cookie("portal_session", cookie.value[:-2] + ("AA" if cookie.value[-2:] != "AA" else "BB"))
    assert tiles() == 9
    # A kept cookie past the session lifetime is refused too.
    client.set_cookie("portal_session", cookie.value)
    assert tiles() == 7
    app.permanent_session_lifetime = timedelta(seconds=1)
    time.sleep(2.1)
    assert tiles() == 9
