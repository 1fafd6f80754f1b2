"""The login flow: /auth/login, /auth/callback, /auth/logout, back-channel logout, the demo switch."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from werkzeug.wrappers import Response as BaseResponse

from ..identity import DEMO_USERS
from ..storage.presence import record_sign_in
from ..web.guard import csrf_valid
from ..web.urls import safe_next
from . import AuthRuntime, external_url
from .claims import user_from_claims
from .guard import COOKIE_KEY, login_url, refresh_due_at, start_session
from .login_attempts import LoginAttempt, remember, take
from .oidc import LoginRejected, OidcError, ProviderUnavailable
from .sessions import SessionRecord

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/auth")

RETRY_AFTER = 30  # seconds before a login Keycloak could not take is tried again (by the page too)


def _runtime() -> AuthRuntime:
    runtime: AuthRuntime = current_app.extensions["portal_auth"]
    return runtime


def _oidc_runtime() -> AuthRuntime:
    """The runtime of an endpoint that exists only with single sign-on (404 in the demo)."""
    runtime = _runtime()
    if runtime.mode != "oidc" or runtime.oidc is None:
        abort(404)
    return runtime


def _language() -> str:
    return str(get_locale() or "en")


def _problem_page(error: OidcError, next_path: str = "/") -> tuple[str, int, dict[str, str]]:
    """The page that says, in the user's language, that the login did not work (never a traceback)."""
    log.warning(
        "login failed",
        extra={"event": "login_failed", "kind": error.kind, "error": error.detail},
    )
    headers = {"Cache-Control": "no-store"}
    if isinstance(error, ProviderUnavailable):
        headers["Retry-After"] = str(RETRY_AFTER)
    page = render_template(
        "auth/problem.html", kind=error.kind, retry_url=login_url(next_path), retry_after=RETRY_AFTER
    )
    return page, error.status, headers


@bp.get("/login")
def login() -> Any:
    """Send the browser to Keycloak's login page; it comes back to `next` (a path of the portal)."""
    runtime = _runtime()
    next_path = safe_next(request.args.get("next"))
    if runtime.mode != "oidc" or g.get("user") is not None:
        return redirect(next_path)
    assert runtime.oidc is not None
    redirect_uri = external_url("auth.callback")
    try:
        login_request = runtime.oidc.login_request(redirect_uri, _language())
    except OidcError as error:
        return _problem_page(error, next_path)
    attempt = LoginAttempt(login_request.nonce, login_request.code_verifier, redirect_uri, next_path)
    remember(session, login_request.state, attempt)
    response = redirect(login_request.url)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/callback")
def callback() -> Any:
    """Keycloak sends the browser back here with a code: check everything, then open the session."""
    runtime = _oidc_runtime()
    assert runtime.oidc is not None
    attempt = take(session, request.args.get("state", ""))
    if attempt is None:
        return _problem_page(LoginRejected("unknown, tampered or already used state"))
    if request.args.get("error"):
        error = request.args.get("error", "")[:60]
        return _problem_page(LoginRejected(f"Keycloak answered {error}"), attempt.next_path)
    code = request.args.get("code", "")
    if not code:
        return _problem_page(LoginRejected("callback without a code"), attempt.next_path)
    try:
        tokens = runtime.oidc.exchange(code, attempt.redirect_uri, attempt.code_verifier, attempt.nonce)
    except OidcError as error:
        return _problem_page(error, attempt.next_path)

    now = time.time()
    user = user_from_claims(tokens.id_claims, tokens.access_claims, runtime.client_id, runtime.kept_claims)
    record = SessionRecord(
        session_id=SessionRecord.new_id(),
        subject=user.subject,
        keycloak_sid=str(tokens.id_claims.get("sid") or tokens.access_claims.get("sid") or ""),
        refresh_token=tokens.refresh_token,
        id_token=tokens.id_token,
        refresh_at=refresh_due_at(now, tokens.expires_in),
        expires_at=runtime.session_end(now, tokens.refresh_expires_in),
    )
    start_session(runtime, user, record)
    record_sign_in(user)
    log.info("login", extra={"event": "login", "user": user.subject})
    response = redirect(attempt.next_path, code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/logout")
def logout() -> Any:
    """End the portal session first, then Keycloak's (RP-initiated logout with the ID token)."""
    runtime = _runtime()
    next_path = safe_next(request.form.get("next"))
    if runtime.mode != "oidc":
        session.pop("demo_user", None)
        return redirect(next_path, code=303)
    data = session.get(COOKIE_KEY)
    if isinstance(data, dict) and not csrf_valid():
        abort(400)
    session_id = str(data.get("sid") or "") if isinstance(data, dict) else ""
    record = runtime.sessions.get(session_id) if session_id else None
    if session_id:  # ended even when its record cannot be read (Redis away): see OutageLedger
        runtime.sessions.end(session_id)
    session.clear()
    session["after_logout"] = next_path
    assert runtime.oidc is not None
    try:
        target = runtime.oidc.end_session_url(
            record.id_token if record else None, external_url("auth.logged_out"), _language()
        )
    except OidcError as error:
        log.warning(
            "Keycloak logout unavailable; the portal session is over",
            extra={"event": "logout_degraded", "kind": error.kind, "error": error.detail},
        )
        return redirect(url_for("auth.logged_out"), code=303)
    log.info("logout", extra={"event": "logout", "user": record.subject if record else None})
    # Not a redirect: the CSP's form-action 'self' also covers the redirects after a form post, and
    # Keycloak is another origin. This page goes on by itself (meta refresh), or with its button.
    page = render_template("auth/leaving.html", target=target)
    return page, 200, {"Cache-Control": "no-store"}


@bp.get("/logged-out")
def logged_out() -> Any:
    """Where Keycloak sends the browser after logout: a page to sign in again."""
    if g.get("user") is not None:
        return redirect(url_for("shell.index"))
    next_path = safe_next(session.get("after_logout"))
    page = render_template("auth/logged_out.html", retry_url=login_url(next_path))
    return page, 200, {"Cache-Control": "no-store"}


@bp.post("/backchannel-logout")
def backchannel_logout() -> BaseResponse:
    """Keycloak ended a session: check its logout token and end the matching portal sessions."""
    runtime = _oidc_runtime()
    assert runtime.oidc is not None
    token = request.form.get("logout_token", "")
    try:
        if not token:
            raise LoginRejected("no logout_token")
        claims = runtime.oidc.verify_logout_token(token)
    except OidcError as error:
        log.warning(
            "back-channel logout refused",
            extra={"event": "backchannel_logout_refused", "kind": error.kind, "error": error.detail},
        )
        status = 503 if isinstance(error, ProviderUnavailable) else 400
        response = jsonify(error="invalid_request" if status == 400 else "temporarily_unavailable")
        response.status_code = status
        response.headers["Cache-Control"] = "no-store"
        return response
    if not runtime.sessions.first_use(str(claims["jti"]), runtime.oidc.logout_token_max_age + 60):
        log.warning("back-channel logout token replayed", extra={"event": "backchannel_logout_replayed"})
        response = jsonify(error="invalid_request")
        response.status_code = 400
        response.headers["Cache-Control"] = "no-store"
        return response
    sid = str(claims.get("sid") or "") or None
    sub = str(claims.get("sub") or "") or None
    ended = runtime.sessions.end_matching(sid, sub)
    log.info("back-channel logout", extra={"event": "backchannel_logout", "sessions_ended": ended})
    return Response(status=200, headers={"Cache-Control": "no-store"})


@bp.get("/demo-user/<username>")
def demo_user(username: str) -> BaseResponse:
    """Demo mode only: act as another demo user, to see what roles change on the page."""
    if _runtime().mode != "demo" or username not in DEMO_USERS:
        abort(404)
    session["demo_user"] = username
    return redirect(safe_next(request.args.get("next")), code=303)
