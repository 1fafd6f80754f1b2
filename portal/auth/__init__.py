"""Single sign-on with Keycloak (or the demo identities): login, session, logout, and the guard.

`init_auth(app, state)` registers the blueprint and a before-request hook that sets `g.user`
and sends anyone without a session to the login (see `guard.py`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from flask import (
    Flask,
    Request,
    Response,
    abort,
    current_app,
    g,
    has_request_context,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from itsdangerous import BadSignature
from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wrappers import Response as BaseResponse

from ..caching.broadcast import RedisBroadcast
from ..caching.memo import Memo
from ..caching.stores import FallbackStore, temporary_file_store
from ..identity import DEMO_USER, DEMO_USERS
from ..state import PortalState
from .guard import identify, is_public, login_required
from .oidc import OidcClient
from .sessions import OutageLedger, SessionStore, TokenSealer

log = logging.getLogger(__name__)

__all__ = ["AuthRuntime", "external_url", "init_auth", "portal_origin"]


@dataclass
class AuthRuntime:
    """The identity side of the deployment, built once at start-up."""

    mode: str
    oidc: OidcClient | None = None
    sessions: SessionStore = field(default_factory=lambda: SessionStore(_NoStore()))
    client_id: str = ""
    session_max_age: float = 36000.0
    call_budget: float = 10.0  # seconds a refresh may hold its lock
    public_url: str | None = None
    allowed_hosts: tuple[str, ...] = ()  # the Hosts redirect URIs may be built from (no public_url)
    outage_grace: float = 900.0  # seconds sessions go on while the session store is away
    relevant_grants: frozenset[str] = frozenset()
    kept_claims: frozenset[str] = frozenset()  # token claims the widgets ask for (User.claims)

    def session_end(self, now: float, refresh_expires_in: float) -> float:
        """When a session ends: Keycloak's refresh lifetime, or the configured maximum without one."""
        lifetime = refresh_expires_in if refresh_expires_in > 0 else self.session_max_age
        return now + min(lifetime, self.session_max_age)


def portal_origin() -> str:
    """The portal's origin for absolute URLs: `auth.oidc.public_url`, else the request's own if
    its Host is listed in `auth.oidc.allowed_hosts` (the demo lists none: any well-formed Host).

    Nothing security-relevant (a redirect URI, a private feed URL) is built on an unlisted Host:
    400 instead.
    """
    runtime: AuthRuntime = current_app.extensions["portal_auth"]
    if runtime.public_url:
        return runtime.public_url
    if not host_is_trusted(request.host, runtime.allowed_hosts):
        log.warning(
            "request for an unlisted host", extra={"event": "untrusted_host", "host": request.host[:100]}
        )
        abort(400)
    return request.host_url.rstrip("/")


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute URL of one of the portal's endpoints, on `portal_origin()` (400 for an unlisted Host)."""
    return portal_origin() + url_for(endpoint, **values)


class _NoStore:
    """Demo mode keeps no server-side session."""

    shared = False

    def get(self, key: str) -> None:
        return None

    def set(self, key: str, value: object, timeout: float) -> None:
        return None

    def add(self, key: str, value: object, timeout: float) -> bool:
        return True

    def delete(self, key: str) -> None:
        return None

    def try_lock(self, key: str, ttl: float) -> None:
        return None

    def ping(self) -> bool:
        return True


class PortalSessionInterface(SecureCookieSessionInterface):
    """The signed cookie, marked Secure whenever the request came over TLS (behind the proxy too).

    A dashboard sends the same cookie with every poll of every card: its signature is checked
    and its payload decoded once per worker, then kept by the exact cookie value (a forged or
    altered cookie is a different value, checked in full). The age limit is still applied on
    every request. The session gets a copy of the top level; nested values are never changed
    in place by the portal (they are replaced).
    """

    def __init__(self) -> None:
        self._decoded: Memo[str, tuple[dict[str, Any], float]] = Memo(4096)

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        value = request.cookies.get(self.get_cookie_name(app))
        if not value or not app.secret_key:
            return super().open_session(app, request)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        found = self._decoded.get(value)
        if found is None:
            serializer = self.get_signing_serializer(app)
            assert serializer is not None
            try:
                data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
            except BadSignature:
                return self.session_class()
            found = (data, signed.timestamp())
            self._decoded.put(value, found)
        elif not 0 <= time.time() - found[1] <= max_age:
            return self.session_class()
        return self.session_class(found[0])

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or (has_request_context() and request.is_secure)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if session.modified or (session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]):
            super().save_session(app, session, response)
            if response.status_code == 204:
                response.vary.discard("Cookie")  # nothing to cache in an empty answer
            return
        # Unchanged (every poll): no cookie to write, only say the answer depends on it.
        if session and session.accessed and response.status_code != 204:
            vary = response.headers.get("Vary")
            response.headers["Vary"] = f"{vary}, Cookie" if vary else "Cookie"


def _relevant_grants(state: PortalState) -> frozenset[str]:
    """Every role or group the configuration names (the ones a trimmed cookie must keep): of the
    tiles, the widgets, the teams' starting layouts and the names shown in the user menu."""
    names: set[str] = set()
    for tile in state.config.tiles:
        names.update(tile.roles)
    for runtime in state.widgets.values():
        names.update(runtime.settings.roles)
    for rule in state.config.layout.defaults:
        names.update(rule.roles)
    names.update(state.config.auth.role_labels)
    return frozenset(names)


def _kept_claims(state: PortalState) -> frozenset[str]:
    """The token claims the configured widgets and their upstreams' sections need besides the
    identity (the claim holding a GitLab or Taiga username)."""
    names: set[str] = set()
    for runtime in state.widgets.values():
        if runtime.configured and runtime.settings.enabled:
            names.update(runtime.widget.identity_claims(runtime.settings))
            for upstream in runtime.widget.upstreams:
                section = runtime.config.upstream(upstream.name)
                if section is not None:
                    names.update(section.identity_claims())
    return frozenset(names)


def _sessions(state: PortalState) -> SessionStore:
    """Records in Redis (each worker keeping what it read, told of changes) or in the pod's files.

    With Redis, the pod's files also stand in while Redis is away: what is written then (a login,
    an ended session) is seen by every worker of the pod, and the ends reach Redis when it is back.
    """
    sealer = TokenSealer(state.settings.secrets.secret_key)
    files = temporary_file_store(state.codec)
    if isinstance(state.store, FallbackStore) and isinstance(state.broadcast, RedisBroadcast):
        store = FallbackStore(state.store.primary, files, state.store.observer)
        return SessionStore(store, state.broadcast, sealer, OutageLedger(files))
    return SessionStore(files, None, sealer)


def build_runtime(state: PortalState) -> AuthRuntime:
    """The OIDC client and session store for oidc mode; nothing for the demo."""
    auth = state.config.auth
    if auth.mode == "demo" or auth.oidc is None:
        return AuthRuntime(mode="demo")
    oidc = auth.oidc
    secret = state.settings.secrets.oidc_client_secret or ""
    return AuthRuntime(
        mode="oidc",
        oidc=OidcClient(oidc, secret, partial(state.cache.observer.upstream_call, "keycloak")),
        sessions=_sessions(state),
        client_id=oidc.client_id,
        session_max_age=float(oidc.session_max_age),
        call_budget=oidc.timeout * 2 + 2,
        public_url=str(oidc.public_url).rstrip("/") if oidc.public_url else None,
        allowed_hosts=oidc.allowed_hosts,
        outage_grace=float(oidc.outage_grace),
        relevant_grants=_relevant_grants(state),
        kept_claims=_kept_claims(state),
    )


def init_auth(app: Flask, state: PortalState) -> AuthRuntime:
    """Register the login routes, the session cookie and the guard on every request."""
    from . import views  # noqa: PLC0415 - the views import this package's runtime

    runtime = build_runtime(state)
    app.extensions["portal_auth"] = runtime
    app.session_interface = PortalSessionInterface()
    if runtime.public_url and runtime.public_url.startswith("https://"):
        # Behind a proxy gunicorn does not trust, the request may look like plain HTTP.
        app.config["SESSION_COOKIE_SECURE"] = True
    app.register_blueprint(views.bp)
    app.jinja_env.globals.update(auth_mode=runtime.mode, demo_users=DEMO_USERS)

    @app.before_request
    def _identify() -> BaseResponse | None:
        if request.endpoint == "static":
            return None
        if runtime.mode == "demo":
            g.user = DEMO_USERS.get(str(session.get("demo_user")), DEMO_USER)
            return None
        g.user = identify(runtime)
        if g.user is None and request.endpoint is not None and not is_public(app, request.endpoint):
            return login_required()
        return None

    return runtime
