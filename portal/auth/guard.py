"""Every request: who is asking (cookie, one store read, a token refresh when due), and login if nobody.

The hot path of a widget poll is: decode the signed cookie, read the session record. Keycloak is
called only when the access token is about to expire (every few minutes per session), by one
request at a time per session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, current_app, request, session, url_for
from werkzeug.wrappers import Response as BaseResponse

from ..identity import User
from ..storage.presence import record_still_here
from ..web.urls import safe_next
from .claims import fit_grants, from_cookie, keycloak_sid_of, to_cookie, user_from_claims
from .oidc import GrantRefused, OidcError
from .sessions import SessionRecord

if TYPE_CHECKING:
    from . import AuthRuntime

log = logging.getLogger(__name__)

COOKIE_KEY = "auth"
REFRESH_RETRY = 30.0  # seconds before trying again when Keycloak could not refresh
# Reachable without a session: probes, assets, the login flow, the preferences its pages offer.
PUBLIC_ENDPOINTS = frozenset(
    {
        "static",
        "health.healthz",
        "health.readyz",
        "security.csp_report",
        "shell.set_language",
        "shell.set_theme",
        "auth.login",
        "auth.callback",
        "auth.logout",
        "auth.logged_out",
        "auth.backchannel_logout",
        "auth.demo_user",
    }
)

PUBLIC_VIEW = "portal_public_view"


def public_view(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view as reachable without a session: it checks its caller itself (a secret token in
    its URL, a signature). Nothing of a logged-in user is available to it."""
    setattr(view, PUBLIC_VIEW, True)
    return view


def is_public(app: Flask, endpoint: str) -> bool:
    """Whether an endpoint is reachable without a session."""
    return endpoint in PUBLIC_ENDPOINTS or bool(getattr(app.view_functions.get(endpoint), PUBLIC_VIEW, False))


_refreshing: set[str] = set()
_refreshing_lock = threading.Lock()


def refresh_due_at(now: float, expires_in: float) -> float:
    """Refresh a little before the access token expires."""
    return now + max(1.0, expires_in - min(30.0, expires_in / 5))


def start_session(runtime: AuthRuntime, user: User, record: SessionRecord) -> None:
    """Write the record, then the cookie (a fresh cookie: no state of a previous session survives)."""
    runtime.sessions.save(record)
    session.clear()
    session[COOKIE_KEY] = _cookie(runtime, user, record)


def _cookie(runtime: AuthRuntime, user: User, record: SessionRecord) -> dict[str, object]:
    return to_cookie(
        fit_grants(user, runtime.relevant_grants), record.session_id, record.expires_at, record.keycloak_sid
    )


def identify(runtime: AuthRuntime) -> User | None:
    """The logged-in user of this request, or None (the cookie is cleared if its session ended)."""
    parsed = from_cookie(session.get(COOKIE_KEY)) if COOKIE_KEY in session else None
    if parsed is None:
        if COOKIE_KEY in session:
            session.pop(COOKIE_KEY)
        return None
    user, session_id, expires_at = parsed
    now = time.time()
    if expires_at <= now:
        return _ended(runtime, session_id, "expired")
    record = runtime.sessions.get(session_id)
    if record is None:
        # Redis is away: a session goes on for the configured grace, unless it was ended meanwhile
        # (in any worker of this pod) or the outage has lasted longer. Fail closed on revocation.
        keycloak_sid = keycloak_sid_of(session.get(COOKIE_KEY))
        if runtime.sessions.outage_allows(session_id, keycloak_sid, user.subject, runtime.outage_grace):
            return user
        return _ended(runtime, session_id, "ended" if not runtime.sessions.degraded else "outage")
    if record.refresh_at <= now:
        return _refresh(runtime, user, record)
    return user


def _ended(runtime: AuthRuntime, session_id: str, why: str) -> User | None:
    """Forget a session that is over (its record and the cookie's identity); nobody is logged in."""
    runtime.sessions.end(session_id)
    session.pop(COOKIE_KEY, None)
    log.info("session over", extra={"event": "session_over", "reason": why})
    return None


def _refresh(runtime: AuthRuntime, user: User, record: SessionRecord) -> User | None:
    """Refresh the tokens once for all concurrent requests of this session; others go on as they are."""
    with _refreshing_lock:
        if record.session_id in _refreshing:
            return user
        _refreshing.add(record.session_id)
    try:
        lock = runtime.sessions.store.try_lock(f"auth:refresh:{record.session_id}", runtime.call_budget)
        if lock is None:
            return user  # another process is refreshing this session
        try:
            return _refresh_locked(runtime, user, record)
        finally:
            lock.release()
    finally:
        with _refreshing_lock:
            _refreshing.discard(record.session_id)


def _refresh_locked(runtime: AuthRuntime, user: User, record: SessionRecord) -> User | None:
    latest = runtime.sessions.get(record.session_id, fresh=True)
    if latest is None:
        return _ended(runtime, record.session_id, "ended")
    if latest.refresh_at > time.time():
        return user  # refreshed meanwhile by another process
    assert runtime.oidc is not None
    try:
        tokens = runtime.oidc.refresh(latest.refresh_token)
    except GrantRefused:
        return _ended(runtime, record.session_id, "refresh refused")
    except OidcError as exc:
        log.warning(
            "session refresh failed; the session goes on until it expires",
            extra={"event": "session_refresh_failed", "kind": exc.kind, "error": exc.detail},
        )
        runtime.sessions.save(replace(latest, refresh_at=time.time() + REFRESH_RETRY))
        return user
    now = time.time()
    renewed = user_from_claims(tokens.id_claims, tokens.access_claims, runtime.client_id, runtime.kept_claims)
    updated = SessionRecord(
        session_id=latest.session_id,
        subject=latest.subject,
        keycloak_sid=latest.keycloak_sid,
        refresh_token=tokens.refresh_token,
        id_token=tokens.id_token or latest.id_token,
        refresh_at=refresh_due_at(now, tokens.expires_in),
        expires_at=runtime.session_end(now, tokens.refresh_expires_in),
    )
    runtime.sessions.save(updated)
    if not tokens.id_claims:  # no ID token on this refresh: keep the profile we have
        renewed = replace(user, roles=renewed.roles, groups=renewed.groups)
    session[COOKIE_KEY] = _cookie(runtime, renewed, updated)
    record_still_here(renewed)
    return renewed


def login_url(next_path: str) -> str:
    return f"{url_for('auth.login')}?{urlencode({'next': safe_next(next_path)})}"


def current_page() -> str:
    """The relative path of the page a request comes from: htmx says which in HX-Current-URL,
    the page's own JSON request (a layout change) by its Referer."""
    if request.headers.get("HX-Request") or request.is_json:
        try:
            current = urlsplit(request.headers.get("HX-Current-URL") or request.referrer or "")
        except ValueError:  # a malformed URL (say "http://[::1"): back to the dashboard
            return "/"
        if current.netloc and current.netloc != request.host:
            return "/"
        return safe_next(current.path + (f"?{current.query}" if current.query else ""))
    return safe_next(request.full_path if request.query_string else request.path)


LOGIN_HEADER = "X-Portal-Login"  # where a change refused for want of a session sends the page


def login_required() -> BaseResponse:
    """A page goes to the login; an htmx request, or the page's own JSON request (a layout
    change), makes the whole page go there (`HX-Redirect`), never into a card or a message.

    A change (any other method than GET) gets `X-Portal-Login` instead: htmx would follow
    `HX-Redirect` at once, and the person would be back on the dashboard without a word about
    the change that was not made. portal.js notes it for the page that comes back, then goes."""
    target = login_url(current_page())
    response: BaseResponse
    if (request.headers.get("HX-Request") or request.is_json) and request.method not in ("GET", "HEAD"):
        response = Response(status=401)
        response.headers[LOGIN_HEADER] = target
    elif request.headers.get("HX-Request") or request.is_json:
        response = Response(status=401)
        response.headers["HX-Redirect"] = target
    elif request.method in ("GET", "HEAD"):
        response = current_app.redirect(target, code=302)
    else:
        response = Response("login required\n", status=401, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response
