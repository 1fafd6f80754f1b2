"""The shell's routes: the dashboard, the language and theme switches, the tiles' stylesheet."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from ..config import LANGUAGES
from ..identity import current_user
from ..state import portal_state
from ..web.i18n import LANGUAGE_COOKIE
from ..web.urls import safe_next
from ..widgets.serving import loading_view

bp = Blueprint("shell", __name__)

THEME_COOKIE = "portal_theme"
THEMES = ("light", "dark", "system")
ONE_YEAR = 365 * 24 * 3600


@bp.get("/")
def index() -> str:
    """The dashboard: tiles and widget cards, each card loading itself."""
    user = current_user()
    if user is None:  # the guard sends anyone without a session to the login first
        abort(401)
    from ..layout.views import page_layout  # noqa: PLC0415 - state imports this package (icons)

    layout = page_layout(user)
    return render_template(
        "shell/index.html",
        layout=layout,
        cards=[(card, loading_view(card.ctx)) for card in layout.cards],
        # A card that fills the tiles' status dots is on the page: the dots wait for it (when the
        # user hid or folded it, they say "unknown" until it is shown and polls again).
        status_dots=any(card.ctx.widget.fills_tile_dots for card in layout.cards),
    )


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


@bp.get("/tiles.css")
def tiles_css() -> Response:
    """Each tile's accent colour, as a stylesheet (a strict CSP forbids style attributes)."""
    css = portal_state().tiles_css
    response = Response(css, mimetype="text/css")
    response.headers["Cache-Control"] = f"public, max-age={ONE_YEAR}, immutable"
    return response
