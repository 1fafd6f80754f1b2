"""The shell's routes: the dashboard, the language and theme switches, the tiles' stylesheet."""

from __future__ import annotations

import hashlib
import time

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import get_locale
from werkzeug.wrappers import Response as BaseResponse

from ..config import LANGUAGES, Tile, localized
from ..identity import User, current_user
from ..state import portal_state, tiles_stylesheet
from ..web.assets import ONE_YEAR
from ..web.i18n import LANGUAGE_COOKIE
from ..web.urls import safe_next
from ..widgets.serving import first_card

bp = Blueprint("shell", __name__)

THEME_COOKIE = "portal_theme"
THEMES = ("light", "dark", "system")


@bp.get("/")
def index() -> Response:
    """The dashboard: tiles and widget cards; a card whose data is fresh in the cache is drawn
    with it, the others load themselves."""
    user = current_user()
    if user is None:  # the guard sends anyone without a session to the login first
        abort(401)
    from ..layout.model import access_key  # noqa: PLC0415 - state imports this package (icons)
    from ..layout.views import page_layout  # noqa: PLC0415

    layout = page_layout(user)
    page = render_template(
        "shell/index.html",
        layout=layout,
        access=access_key(layout, user, portal_state().config.auth.role_labels),
        cards=[(card, first_card(card.ctx, user, card.polls)) for card in layout.cards],
        # A card that fills the tiles' status dots is on the page: the dots wait for it (when the
        # user hid or folded it, they say "unknown" until it is shown and polls again).
        status_dots=any(card.ctx.widget.fills_tile_dots for card in layout.cards),
        changed=portal_state().changes.header(),  # what the page is drawn with: older pushes move nothing
        served_at=int(time.time() * 1000),  # the page counts "5 min ago" from the portal's clock
    )
    # The page holds the session's CSRF token and the user's name and e-mail: never stored.
    return Response(page, headers={"Cache-Control": "no-store"}, mimetype="text/html")


def _remember(name: str, value: str) -> BaseResponse:
    response = redirect(safe_next(request.args.get("next")), code=303)
    response.set_cookie(
        name,
        value,
        max_age=ONE_YEAR,
        httponly=False,  # the theme script reads it to switch without a reload
        samesite="Lax",
        secure=request.is_secure,
    )
    return response


@bp.get("/preferences/language/<code>")
def set_language(code: str) -> BaseResponse:
    """Remember the chosen language and go back to the page."""
    if code not in LANGUAGES:
        abort(404)
    return _remember(LANGUAGE_COOKIE, code)


@bp.get("/preferences/theme/<mode>")
def set_theme(mode: str) -> BaseResponse:
    """Remember light, dark or system theme (the no-script path of the theme switch)."""
    if mode not in THEMES:
        abort(404)
    return _remember(THEME_COOKIE, mode)


def visible_tiles(user: User | None) -> list[Tile]:
    """The tiles this user may see, in configuration order."""
    return [t for t in portal_state().tiles if user is not None and user.may_see(t.roles)]


def role_names(user: User) -> list[str]:
    """The user's roles and groups as the configuration names them (auth.role_labels), sorted;
    those it does not name are left out (a raw Keycloak name means nothing to most people)."""
    labels = portal_state().config.auth.role_labels
    language = str(get_locale())
    named = (user.roles | user.groups) & labels.keys()
    return sorted({localized(labels[grant], language) for grant in named})


def tiles_css_version(user: User | None) -> str:
    """The version of this user's tile stylesheet: of the build and the tiles they see."""
    slugs = ",".join(tile.slug for tile in visible_tiles(user))
    return hashlib.blake2b(f"{portal_state().build.build_id}:{slugs}".encode(), digest_size=6).hexdigest()


def viewer_key(user: User | None) -> str:
    """Who the page is for, as the browser may keep it: a digest of the subject, no name. The
    rows a person has seen are remembered in their browser under it (portal.js), so that
    someone else signing in on the same browser starts afresh."""
    if user is None:
        return ""
    return hashlib.blake2b(user.subject.encode(), digest_size=8, person=b"portal-viewer").hexdigest()


def tiles_css_url(user: User | None) -> str:
    """The tile stylesheet of this user's tiles, its URL versioned by the build and those tiles."""
    return url_for("shell.tiles_css", v=tiles_css_version(user))


@bp.get("/tiles.css")
def tiles_css() -> Response:
    """The accent colour of each tile this user sees (a strict CSP forbids style attributes).

    Private: it names only the tiles the user's roles show, and a shared cache must not hand
    it to someone else. Kept a year only under its own version: during a rolling upgrade an old
    pod may answer a new page's URL (web/assets.py says why that must not stick).
    """
    state = portal_state()
    user = current_user()
    css = tiles_stylesheet(tuple(visible_tiles(user)), state.icons)
    response = Response(css, mimetype="text/css")
    if request.args.get("v") == tiles_css_version(user):
        response.headers["Cache-Control"] = f"private, max-age={ONE_YEAR}, immutable"
    else:
        response.headers["Cache-Control"] = "private, no-cache"
    return response
