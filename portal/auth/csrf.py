"""A per-session token for the portal's own forms and htmx requests that change something."""

from __future__ import annotations

import hmac
import secrets

from flask import request, session

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"


def csrf_token() -> str:
    """This session's token (created on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(18)
    return token


def csrf_ok() -> bool:
    """True when the request carries this session's token, in the form or as a header."""
    expected = session.get("csrf")
    sent = request.form.get(FIELD) or request.headers.get(HEADER) or ""
    return isinstance(expected, str) and hmac.compare_digest(sent, expected)
