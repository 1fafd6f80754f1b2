"""The guard of every state-changing request, and its audit line.

A change (a task's status, a layout, a logout) is made only by a logged-in user allowed by role,
from the portal's own page: same origin (Origin, or Sec-Fetch-Site) and Flask-WTF's CSRF token,
which the page carries once in `hx-headers` and htmx sends as `X-CSRFToken` with every request.
Each change leaves an audit line: who, what, on what, and how it ended.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from flask import Flask, g, request
from flask.wrappers import Response
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

from ..identity import current_user
from ..upstreams.errors import N_, Reason

csrf = CSRFProtect()
audit_log = logging.getLogger("portal.audit")


def init_guard(app: Flask) -> None:
    """CSRF tokens through Flask-WTF, checked where `write_refusal` is called (not on every POST)."""
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # back-channel logout and CSP reports have none
    app.config.setdefault(
        "WTF_CSRF_TIME_LIMIT", None
    )  # a dashboard stays open all day: the session bounds it
    app.config.setdefault("WTF_CSRF_SSL_STRICT", True)  # over TLS, the Referer must be this origin too
    csrf.init_app(app)
    app.after_request(_renewed_token)


RENEWED_TOKEN_HEADER = "X-Portal-CSRF"


def _renewed_token(response: Response) -> Response:
    """A change refused for its token alone, from the portal's own page of a signed-in person
    (who signed in again in another tab: a new session, a new token), carries the session's
    token: portal.js puts it in the page, and the person's next try goes through. The page's
    origin was checked first: no other site can read this answer."""
    if g.get("renew_csrf"):
        response.headers[RENEWED_TOKEN_HEADER] = generate_csrf()
    return response


def _origin_of_request() -> str:
    return f"{request.scheme}://{request.host}"


def same_origin(extra_origins: Iterable[str] = ()) -> bool:
    """Whether the request came from a page of the portal itself."""
    origin = request.headers.get("Origin")
    if origin is None:
        # Browsers send Origin on every POST; without it, trust only what says it is same-origin.
        return request.headers.get("Sec-Fetch-Site", "same-origin") == "same-origin"
    allowed = {_origin_of_request(), *(o.rstrip("/") for o in extra_origins)}
    return origin.rstrip("/") in allowed


def csrf_valid() -> bool:
    """Whether the request carries this session's CSRF token (form field or header)."""
    try:
        csrf.protect()
    except CSRFError:
        return False
    return True


def write_refusal(roles: Iterable[str] = (), extra_origins: Iterable[str] = ()) -> Reason | None:
    """Why this state-changing request must be refused, in words; None when it may go on."""
    user = current_user()
    if user is None:
        return Reason.of(N_("Your session has ended: reload the page to sign in again."))
    if not user.may_see(roles):
        return Reason.of(N_("You are not allowed to make this change."))
    if not same_origin(extra_origins):
        return Reason.of(N_("This change did not come from the portal's page, so it was refused."))
    if not csrf_valid():
        g.renew_csrf = True
        return Reason.of(
            N_("The page's security token had expired: it has been renewed. Make your change again.")
        )
    return None


def audit(action: str, target: str, outcome: str, **fields: object) -> None:
    """One line per change: who did what to what, and how it ended."""
    user = current_user()
    audit_log.info(
        "change",
        extra={
            "event": "audit",
            "user": user.subject if user else None,
            "action": action,
            "target": target,
            "outcome": outcome,
            **fields,
        },
    )
