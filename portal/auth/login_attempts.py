"""Logins sent to Keycloak and not yet back, kept in the browser's signed session cookie.

Nothing is stored on the server before someone has signed in: a flood of anonymous
`/auth/login` requests then costs the pod nothing (a store of pending logins, in the pod's
`/dev/shm` without Redis, would fill and stop every sign-in). The cookie is signed, so the
browser can read its own nonce and PKCE verifier but not change them; each attempt is taken
once, and expires after `LOGIN_TTL`.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

LOGINS_KEY = "logins"
MAX_PENDING = 3  # logins started in other tabs that may still come back
LOGIN_TTL = 600  # seconds a started login may take to come back


@dataclass(frozen=True)
class LoginAttempt:
    """A login sent to Keycloak, kept until its callback (once)."""

    nonce: str
    code_verifier: str
    redirect_uri: str
    next_path: str


def _pending(session: MutableMapping[str, Any], now: float) -> list[list[Any]]:
    """This browser's attempts still in time, oldest first: [state, nonce, verifier, redirect_uri,
    next, started] each (a list: the session's JSON sorts a mapping's keys, losing their order)."""
    found = session.get(LOGINS_KEY)
    if not isinstance(found, list):
        return []
    return [
        fields
        for fields in found
        if isinstance(fields, list)
        and len(fields) == 6
        and all(isinstance(value, str) for value in fields[:5])
        and isinstance(fields[5], int | float)
        and 0 <= now - fields[5] <= LOGIN_TTL
    ]


def remember(session: MutableMapping[str, Any], state: str, attempt: LoginAttempt) -> None:
    """Keep the attempt in the cookie, with at most MAX_PENDING - 1 older ones (other tabs)."""
    now = time.time()
    kept = _pending(session, now)[-(MAX_PENDING - 1) :]
    fields = [state, attempt.nonce, attempt.code_verifier, attempt.redirect_uri, attempt.next_path, int(now)]
    session[LOGINS_KEY] = [*kept, fields]


def take(session: MutableMapping[str, Any], state: str) -> LoginAttempt | None:
    """The attempt this state names, removed from the cookie; None when unknown or too old."""
    pending = _pending(session, time.time())
    found = next((fields for fields in pending if state and fields[0] == state), None)
    rest = [fields for fields in pending if fields is not found]
    if rest:
        session[LOGINS_KEY] = rest
    else:
        session.pop(LOGINS_KEY, None)
    if found is None:
        return None
    return LoginAttempt(*found[1:5])
