"""Server-side session records: the tokens of each portal session, and the logins under way.

The signed cookie carries who the user is and a session id; the record under that id holds the
refresh and ID tokens and says the session is still alive. Deleting the record (logout,
back-channel logout, refresh refused) ends the session on every process that shares the store.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from ..caching.broadcast import Broadcast, KeptRecords
from ..caching.stores import FallbackStore, Store

log = logging.getLogger(__name__)

LOGIN_TTL = 600  # seconds a started login may take to come back
_PREFIX = "auth:"
TOPIC = "session"  # what the broadcast says when a session record changed
_MAX_INDEXED = 50  # sessions remembered per Keycloak session or user, for back-channel logout


@dataclass(frozen=True)
class LoginAttempt:
    """A login sent to Keycloak, kept until its callback (once)."""

    nonce: str
    code_verifier: str
    redirect_uri: str
    next_path: str


@dataclass(frozen=True)
class SessionRecord:
    """The server-side half of a portal session."""

    session_id: str
    subject: str
    keycloak_sid: str
    refresh_token: str
    id_token: str
    refresh_at: float  # when the access token is about to expire: refresh at the next request
    expires_at: float  # when Keycloak stops accepting the refresh token

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(24)


def _key(kind: str, value: str) -> str:
    return f"{_PREFIX}{kind}:{quote(value, safe='')}"


class SessionStore:
    """Records in the shared store; every read that fails is a miss, never an exception.

    With Redis, each worker also keeps the records it read, forgotten as soon as any process
    saves or ends one (a message on the broadcast channel, see caching/broadcast.py): a poll of a logged-in
    dashboard then needs no round trip to Redis.
    """

    def __init__(self, store: Store, broadcast: Broadcast | None = None) -> None:
        """`broadcast` (Redis's channel, with a shared store) lets each worker keep what it read."""
        self.store = store
        self.kept: KeptRecords[SessionRecord] | None = None
        if broadcast is not None:
            self.kept = KeptRecords(broadcast)
            broadcast.subscribe(TOPIC, self.kept.forget)

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and records written there cannot be read."""
        return isinstance(self.store, FallbackStore) and self.store.degraded

    def _get(self, key: str) -> Any:
        try:
            return self.store.get(key)
        except Exception as exc:  # an unreadable entry is a miss
            log.warning("session entry unreadable", extra={"event": "session_unreadable", "error": str(exc)})
            return None

    # --- logins under way -------------------------------------------------------------------

    def start_login(self, state: str, attempt: LoginAttempt) -> None:
        self.store.set(_key("login", state), asdict(attempt), LOGIN_TTL)

    def take_login(self, state: str) -> LoginAttempt | None:
        """The attempt for this state, which can be taken only once."""
        key = _key("login", state)
        found = self._get(key)
        if not isinstance(found, dict):
            return None
        self.store.delete(key)
        try:
            return LoginAttempt(**found)
        except TypeError:
            return None

    # --- sessions ---------------------------------------------------------------------------

    def get(self, session_id: str, fresh: bool = False) -> SessionRecord | None:
        """The record of a live session; `fresh` reads the shared store even when one is kept."""
        kept = self.kept
        if kept is not None and not fresh:
            record = kept.get(session_id)
            if record is not None:
                return record
        mark = kept.mark() if kept is not None else None
        found = self._get(_key("session", session_id))
        if not isinstance(found, dict):
            return None
        try:
            record = SessionRecord(**found)
        except TypeError:
            return None
        if kept is not None and mark is not None:
            kept.keep(session_id, record, mark)
        return record

    def _changed(self, session_id: str) -> None:
        """Every worker, this one first, forgets what it kept of this session."""
        if self.kept is not None:
            self.kept.broadcast.publish(TOPIC, session_id)

    def save(self, record: SessionRecord) -> None:
        ttl = max(1.0, record.expires_at - time.time())
        self.store.set(_key("session", record.session_id), asdict(record), ttl)
        self._changed(record.session_id)
        if record.keycloak_sid:
            self._index(_key("by-sid", record.keycloak_sid), record.session_id, ttl)
        self._index(_key("by-sub", record.subject), record.session_id, ttl)

    def _index(self, key: str, session_id: str, ttl: float) -> None:
        found = self._get(key)
        known = [s for s in found if isinstance(s, str)] if isinstance(found, list) else []
        if session_id not in known:
            known = [*known[-(_MAX_INDEXED - 1) :], session_id]
        self.store.set(key, known, ttl)

    def end(self, session_id: str) -> None:
        self.store.delete(_key("session", session_id))
        self._changed(session_id)

    def first_use(self, token_id: str, ttl: float) -> bool:
        """True the first time a logout token's id is seen (kept `ttl` s, for every replica)."""
        try:
            return self.store.add(_key("logout-token", token_id), True, ttl)
        except Exception as exc:  # the store is unusable: refuse rather than accept a replay
            log.warning(
                "logout token not checked", extra={"event": "logout_token_unchecked", "error": str(exc)}
            )
            return False

    def end_matching(self, keycloak_sid: str | None, subject: str | None) -> int:
        """End the sessions of a Keycloak session (or, without sid, of a user); how many were alive."""
        index = _key("by-sid", keycloak_sid) if keycloak_sid else _key("by-sub", subject or "")
        found = self._get(index)
        ended = 0
        for session_id in found if isinstance(found, list) else []:
            record = self.get(session_id, fresh=True)
            if record is None or (subject and record.subject != subject):
                continue
            self.end(session_id)
            ended += 1
        return ended
