"""Server-side session records: the tokens of each portal session (logins under way: the cookie).

The signed cookie carries who the user is and a session id; the record under that id holds the
refresh and ID tokens and says the session is still alive. Deleting the record (logout,
back-channel logout, refresh refused) ends the session on every process that shares the store.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken

from ..caching.broadcast import KEEP_AT_MOST, Broadcast, KeptRecords
from ..caching.codec import derive_key
from ..caching.memo import Memo
from ..caching.stores import FallbackStore, FileStore, Lock, Store

log = logging.getLogger(__name__)

_PREFIX = "auth:"
TOPIC = "session"  # what the broadcast says when a session record changed (tokens refreshed)
ENDED = "session-ended"  # ... and when a session ended
_MAX_INDEXED = 50  # sessions remembered per Keycloak session or user, for back-channel logout


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


class TokenSealer:
    """Encrypts the refresh and ID tokens of a record at rest (Fernet, a key from the portal's secret).

    Whoever reads the session store (Redis, the pod's files) then holds no usable token.
    """

    def __init__(self, secret: str | None) -> None:
        self._fernet = (
            Fernet(base64.urlsafe_b64encode(derive_key(secret, "session-tokens"))) if secret else None
        )

    def seal(self, record: SessionRecord) -> SessionRecord:
        if self._fernet is None:
            return record
        return replace(
            record,
            refresh_token=self._fernet.encrypt(record.refresh_token.encode()).decode(),
            id_token=self._fernet.encrypt(record.id_token.encode()).decode() if record.id_token else "",
        )

    def open(self, record: SessionRecord) -> SessionRecord:
        """The record with its tokens readable; raises InvalidToken when they were not sealed here."""
        if self._fernet is None:
            return record
        return replace(
            record,
            refresh_token=self._fernet.decrypt(record.refresh_token.encode()).decode(),
            id_token=self._fernet.decrypt(record.id_token.encode()).decode() if record.id_token else "",
        )


def _key(kind: str, value: str) -> str:
    return f"{_PREFIX}{kind}:{quote(value, safe='')}"


EndKind = Literal["session", "keycloak", "subject"]


class OutageLedger:
    """What ended while Redis was away, in the pod's files, until Redis is told.

    An ended session (a logout), a Keycloak session or a user (back-channel logouts) is written
    down as a tombstone that every worker of the pod reads, and queued; when Redis answers again
    the queue is replayed there (the records deleted, every replica told) and cleared.
    """

    QUEUE = "auth:outage:queue"
    KEEP = 7 * 86400  # seconds a tombstone and the queue are kept at most

    def __init__(self, files: FileStore) -> None:
        self.files = files

    @staticmethod
    def _tombstone(kind: str, value: str) -> str:
        return _key(f"outage:ended:{kind}", value)

    def record(self, kind: EndKind, value: str) -> None:
        self.files.set(self._tombstone(kind, value), time.time(), self.KEEP)
        lock = self._lock()
        try:
            queue = self.queue()
            if [kind, value] not in queue:
                self.files.set(self.QUEUE, [*queue, [kind, value]], self.KEEP)
        finally:
            if lock is not None:
                lock.release()

    def _lock(self) -> Lock | None:
        for _ in range(50):  # another worker is writing the queue: a moment
            lock = self.files.try_lock(self.QUEUE, 5)
            if lock is not None:
                return lock
            time.sleep(0.01)
        return None

    def ended(self, session_id: str, keycloak_sid: str, subject: str) -> bool:
        """Whether this session was ended, or its Keycloak session or user, during the outage."""
        named: tuple[tuple[EndKind, str], ...] = (
            ("session", session_id),
            ("keycloak", keycloak_sid),
            ("subject", subject),
        )
        return any(self.files.get(self._tombstone(kind, value)) is not None for kind, value in named if value)

    def waiting(self) -> bool:
        """Whether ends are queued for Redis (one stat)."""
        return self.files.exists(self.QUEUE)

    def queue(self) -> list[list[str]]:
        found = self.files.get(self.QUEUE)
        return (
            [item for item in found if isinstance(item, list) and len(item) == 2]
            if isinstance(found, list)
            else []
        )

    def replayed(self, done: list[list[str]]) -> None:
        """Drop what reached Redis from the queue, and its tombstones."""
        lock = self._lock()
        try:
            left = [item for item in self.queue() if item not in done]
            if left:
                self.files.set(self.QUEUE, left, self.KEEP)
            else:
                self.files.delete(self.QUEUE)
            for kind, value in done:
                self.files.delete(self._tombstone(kind, value))
        finally:
            if lock is not None:
                lock.release()


class SessionStore:
    """Records in the shared store; every read that fails is a miss, never an exception.

    With Redis, each worker also keeps the records it read, forgotten as soon as any process
    saves or ends one (a message on the broadcast channel, see caching/broadcast.py): a poll of a logged-in
    dashboard then needs no round trip to Redis.
    """

    def __init__(
        self,
        store: Store,
        broadcast: Broadcast | None = None,
        sealer: TokenSealer | None = None,
        ledger: OutageLedger | None = None,
    ) -> None:
        """`broadcast` (Redis's channel, with a shared store) lets each worker keep what it read;
        `sealer` encrypts the tokens at rest (every deployment has one; tests may go without);
        `ledger` keeps what ends while Redis is away (with Redis only)."""
        self.store = store
        self.sealer = sealer or TokenSealer(None)
        self.ledger = ledger
        # When this worker last read each session's record alive; a change anywhere forgets it.
        # While Redis is away, only a session seen alive just before may go on (see outage_allows).
        self._alive: Memo[str, float] = Memo(50_000)
        self.kept: KeptRecords[SessionRecord] | None = None
        if broadcast is not None:
            self.kept = KeptRecords(broadcast)
            broadcast.subscribe(TOPIC, self._forget)
            broadcast.subscribe(ENDED, self._forget_ended)

    def _forget(self, session_id: str) -> None:
        """A session changed somewhere: the record this worker kept of it no longer holds (it is
        still alive: a change's own echo, arriving after the next read, must not unsay that)."""
        if self.kept is not None:
            self.kept.forget(session_id)

    def _forget_ended(self, session_id: str) -> None:
        """A session ended somewhere: nor may it go on here while Redis is away."""
        self._forget(session_id)
        self._alive.pop(session_id)

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and records written there cannot be read."""
        return isinstance(self.store, FallbackStore) and self.store.degraded

    def outage_allows(self, session_id: str, keycloak_sid: str, subject: str, grace: float) -> bool:
        """Whether a session whose record cannot be read may go on: only while Redis is away, for
        at most `grace` seconds since this process found it away, and if nothing ended it."""
        if not isinstance(self.store, FallbackStore) or not self.store.degraded:
            return False
        since = self.store.down_since
        if since is None or time.time() - since > grace:
            return False
        seen = self._alive.get(session_id)
        if seen is None or seen < since - KEEP_AT_MOST:
            return False  # not known alive when Redis went away (it may have ended before)
        return self.ledger is None or not self.ledger.ended(session_id, keycloak_sid, subject)

    def _catch_up(self) -> None:
        """Redis is back after an outage during which sessions ended: tell it, once, for the pod."""
        ledger = self.ledger
        if ledger is None or not ledger.waiting() or self.degraded:
            return
        lock = ledger.files.try_lock("auth:outage:replay", 30)
        if lock is None:
            return  # another worker is replaying
        try:
            done = []
            for kind, value in ledger.queue():
                if kind == "session":
                    self.store.delete(_key("session", value))
                    self._changed(value, ENDED)
                else:
                    self.end_matching(
                        value if kind == "keycloak" else None, value if kind == "subject" else None
                    )
                if self.degraded:
                    return  # away again: the rest waits
                done.append([kind, value])
            ledger.replayed(done)
            log.warning(
                "sessions ended during the outage told to Redis",
                extra={"event": "outage_replayed", "ends": len(done)},
            )
        finally:
            lock.release()

    def _get(self, key: str) -> Any:
        try:
            return self.store.get(key)
        except Exception as exc:  # an unreadable entry is a miss
            log.warning("session entry unreadable", extra={"event": "session_unreadable", "error": str(exc)})
            return None

    # --- sessions ---------------------------------------------------------------------------

    def get(self, session_id: str, fresh: bool = False) -> SessionRecord | None:
        """The record of a live session; `fresh` reads the shared store even when one is kept."""
        ledger = self.ledger
        waiting = ledger is not None and ledger.waiting()
        if waiting:
            self._catch_up()
            waiting = ledger is not None and ledger.waiting()
        record = self._read(session_id, fresh)
        if waiting and ledger and record and ledger.ended(session_id, record.keycloak_sid, record.subject):
            return None  # ended during the outage; Redis has not been told yet
        return record

    def _read(self, session_id: str, fresh: bool) -> SessionRecord | None:
        kept = self.kept
        if kept is not None and not fresh:
            record = kept.get(session_id)
            if record is not None:
                self._alive.put(session_id, time.time())
                return record
        mark = kept.mark() if kept is not None else None
        found = self._get(_key("session", session_id))
        if not isinstance(found, dict):
            return None
        try:
            record = self.sealer.open(SessionRecord(**found))
        except (TypeError, InvalidToken):  # not a record, or sealed with another key
            return None
        if kept is not None and mark is not None:
            kept.keep(session_id, record, mark)
        if not self.degraded:
            self._alive.put(session_id, time.time())
        return record

    def _changed(self, session_id: str, topic: str = TOPIC) -> None:
        """Every worker, this one first, forgets what it kept of this session (`ENDED`: and that
        it was alive)."""
        if self.kept is not None:
            self.kept.broadcast.publish(topic, session_id)

    def save(self, record: SessionRecord) -> None:
        ttl = max(1.0, record.expires_at - time.time())
        self.store.set(_key("session", record.session_id), asdict(self.sealer.seal(record)), ttl)
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
        self._alive.pop(session_id)
        self.store.delete(_key("session", session_id))
        if self.ledger is not None and self.degraded:
            self.ledger.record("session", session_id)  # Redis is told when it is back
        self._changed(session_id, ENDED)

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
        """End the sessions of a Keycloak session (or, without sid, of a user); how many were alive.

        While Redis is away the sessions cannot be found: the end is written down (every worker of
        the pod refuses them at once) and reaches Redis when it is back.
        """
        index = _key("by-sid", keycloak_sid) if keycloak_sid else _key("by-sub", subject or "")
        found = self._get(index)
        if self.ledger is not None and self.degraded:
            if keycloak_sid:
                self.ledger.record("keycloak", keycloak_sid)
            elif subject:
                self.ledger.record("subject", subject)
        ended = 0
        for session_id in found if isinstance(found, list) else []:
            record = self.get(session_id, fresh=True)
            if record is None or (subject and record.subject != subject):
                continue
            self.end(session_id)
            ended += 1
        return ended
