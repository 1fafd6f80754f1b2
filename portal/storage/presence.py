"""When each person last signed in to the portal: what lets their calendar feed stop once they left.

A calendar feed's address works without a session, so nothing else would end it when its owner
leaves the team (their Keycloak account disabled): the feed answers only while its owner has
signed in within `widgets.deadlines.feed_idle_days`. Kept as the preference `portal.signed_in`,
written at each sign-in, and at a session's token refresh (Keycloak accepting the person again)
at most every STILL_HERE_EVERY: a page left open for weeks counts, a disabled account does not.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from ..identity import User
from .database import StorageUnavailable
from .preferences import Preference, Preferences, user_preferences

log = logging.getLogger(__name__)

SIGNED_IN = Preference("portal", "signed_in", str, "")
STILL_HERE_EVERY = timedelta(hours=12)


def record_sign_in(user: User, now: datetime | None = None) -> None:
    """Note that `user` signed in now; a database that does not answer only costs a log line."""
    moment = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    try:
        user_preferences(user).set(SIGNED_IN, moment)
    except StorageUnavailable as error:
        log.warning("sign-in not recorded", extra={"event": "sign_in_not_recorded", "error": str(error)})


def last_sign_in(preferences: Preferences) -> datetime | None:
    """When the preferences' person last signed in, or None (never since this was kept);
    StorageUnavailable when the database does not answer."""
    (found,) = preferences.get_many([SIGNED_IN], strict=True)
    try:
        return datetime.fromisoformat(found) if found else None
    except ValueError:
        return None


def record_still_here(user: User, now: datetime | None = None) -> None:
    """At a token refresh: as a sign-in, unless one was kept within STILL_HERE_EVERY (a refresh
    comes every few minutes; the read is the worker's kept copy, not the database)."""
    moment = now or datetime.now(UTC)
    try:
        latest = last_sign_in(user_preferences(user))
    except StorageUnavailable:
        return  # the next refresh tries again
    if latest is None or moment - latest >= STILL_HERE_EVERY:
        record_sign_in(user, moment)
