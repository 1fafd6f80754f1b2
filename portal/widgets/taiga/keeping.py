"""What the Taiga cards keep per person in the portal's database: feed tokens and the sort choice.

Both live behind the small `Keeper` interface below, so that the cards work the same whatever
keeps them:

- `DatabaseKeeper`, on the portal's database (issue 12, `portal/storage/`: typed per-user
  preferences, keyed by the Keycloak subject): the sort is the preference `tasks.sort`; a feed
  is `deadlines.feed_token` (the token; `holders()` finds whose it is) and `deadlines.feed_owner`
  (what the Taiga name it is cut by is found from: username, e-mail and the token's kept claims,
  and when it was made). Used whenever the portal's state has its
  database (every deployment since issue 12).
- `Unavailable`, without a database (an app built without one): nothing is kept (the card sorts
  for the page's life only, and says that calendar feeds need the database; every feed URL 404s).
- `MemoryKeeper`, in one process's memory: for tests.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cryptography.fernet import Fernet, InvalidToken
from flask import Flask, current_app

from ...caching.codec import derive_key
from ...identity import User
from .work import Sort

EXTENSION = "taiga_keeper"
TOKEN_BYTES = 24  # 192 bits, URL-safe: the feed's URL is its only credential
SEALED_PREFIX = "gAAAAA"  # how every Fernet token begins (version byte, then the time): never a plain one
CLAIM_PREFIX = "claim:"  # a kept claim of the feed's owner, in `deadlines.feed_owner`
GRANTS = "grants"  # the owner's roles and groups, one per line, in `deadlines.feed_owner`


@dataclass(frozen=True)
class FeedOwner:
    """Whose deadlines a feed token gives: enough to cut the board without a session."""

    subject: str
    username: str
    email: str
    created: datetime
    claims: tuple[tuple[str, str], ...] = ()  # the kept claims (one may hold the Taiga username)
    # The owner's roles and groups when the token was made (None: a token made before they were
    # kept): the feed is the card's, so it answers only while they may see the card.
    grants: frozenset[str] | None = None
    signed_in: datetime | None = None  # when the owner last signed in to the portal, if known

    def as_user(self) -> User:
        return User(
            subject=self.subject,
            username=self.username,
            name=self.username,
            email=self.email,
            roles=self.grants or frozenset(),
            claims=self.claims,
        )

    def may_see(self, roles: Iterable[str]) -> bool:
        """Whether the owner, as they were when they made the token, may see a card of `roles`."""
        return self.grants is None or self.as_user().may_see(roles)

    def still_here(self, now: datetime, idle: timedelta) -> bool:
        """Whether the owner signed in (or made the token) within `idle` of `now`: a feed stops
        once its owner has not used the portal for that long (they may have left the team)."""
        latest = max(moment for moment in (self.signed_in, self.created) if moment is not None)
        return now - latest <= idle


@dataclass(frozen=True)
class FeedToken:
    token: str
    created: datetime


class StorageMissing(Exception):
    """The portal's database is not there (not configured, or unreachable): nothing was kept."""


class StorageAway(StorageMissing):
    """The portal has a database, but it did not answer: nothing was kept; a later try may work."""


class Keeper(Protocol):
    """Per-person choices of the Taiga cards."""

    @property
    def available(self) -> bool:
        """False when nothing can be kept (no database)."""
        ...

    def feed_token(self, user: User) -> FeedToken | None:
        """The user's current feed token, or None; StorageAway when the database does not answer."""
        ...

    def renew_feed_token(self, user: User) -> FeedToken:
        """A new token for the user; the previous one stops working at once."""
        ...

    def revoke_feed_token(self, user: User) -> None:
        """No token any more: the feed's URL answers 404."""
        ...

    def feed_owner(self, token: str) -> FeedOwner | None:
        """Whose feed this token opens, or None (unknown or revoked); StorageAway when the
        database does not answer."""
        ...

    def sort_of(self, user: User) -> str | None:
        """The user's saved sort of the tasks card, or None."""
        ...

    def save_sort(self, user: User, sort: str) -> None:
        """Keep the user's sort for every device."""
        ...


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest_of(token: str) -> str:
    """What finds a token's owner: SHA-256 (a 192-bit random token needs no slower hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Unavailable:
    """No database: nothing is kept, every feed URL answers 404."""

    available = False

    def feed_token(self, user: User) -> FeedToken | None:
        return None

    def renew_feed_token(self, user: User) -> FeedToken:
        raise StorageMissing("no database")

    def revoke_feed_token(self, user: User) -> None:
        raise StorageMissing("no database")

    def feed_owner(self, token: str) -> FeedOwner | None:
        return None

    def sort_of(self, user: User) -> str | None:
        return None

    def save_sort(self, user: User, sort: str) -> None:
        raise StorageMissing("no database")


class MemoryKeeper:
    """In one process's memory: for tests (and a single-process demo), never for production."""

    available = True

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, FeedOwner]] = {}  # subject -> (token, owner)
        self._sorts: dict[str, str] = {}

    def feed_token(self, user: User) -> FeedToken | None:
        with self._lock:
            found = self._tokens.get(user.subject)
        return FeedToken(found[0], found[1].created) if found else None

    def renew_feed_token(self, user: User) -> FeedToken:
        token = new_token()
        grants = user.roles | user.groups
        owner = FeedOwner(user.subject, user.username, user.email, self._clock(), user.claims, grants)
        with self._lock:
            self._tokens[user.subject] = (token, owner)
        return FeedToken(token, owner.created)

    def revoke_feed_token(self, user: User) -> None:
        with self._lock:
            self._tokens.pop(user.subject, None)

    def feed_owner(self, token: str) -> FeedOwner | None:
        with self._lock:
            for stored, owner in self._tokens.values():
                if secrets.compare_digest(stored, token):
                    return owner
        return None

    def sort_of(self, user: User) -> str | None:
        with self._lock:
            return self._sorts.get(user.subject)

    def save_sort(self, user: User, sort: str) -> None:
        with self._lock:
            self._sorts[user.subject] = sort


def storage() -> Any:
    """The portal's storage package (issue 12), imported when first needed (it reads the state)."""
    return importlib.import_module("portal.storage")


class DatabaseKeeper:
    """Feed tokens and the sort as per-user preferences in the portal's database (issue 12)."""

    available = True

    def __init__(self, database: Any, kept: Any = None, secret: str = "") -> None:
        """`kept`: the worker's KeptPreferences (none: every read queries the database); `secret`:
        the portal's, from which the key that seals the feed tokens at rest is derived."""
        found = storage()
        self.database = database
        self.kept = kept
        self._storage = found
        self._sealer = Fernet(base64.urlsafe_b64encode(derive_key(secret or "-", "feed-tokens")))
        preference = found.Preference
        self.sort = preference("tasks", "sort", Sort, "due")  # every sort the card offers
        # The token sealed (its owner may see their address again), and its digest, by which an
        # anonymous request finds whose it is: the database alone, or a backup, opens no feed.
        # Tokens made before either was kept are plain in `feed_token`, sealed at first use.
        self.token = preference("deadlines", "feed_token", str, "")
        self.digest = preference("deadlines", "feed_digest", str, "")
        self.owner = preference("deadlines", "feed_owner", dict[str, str], {})

    def _of(self, subject: str) -> Any:
        return self._storage.Preferences(self.database, subject, self.kept)

    def _unavailable(self) -> type[Exception]:
        error: type[Exception] = self._storage.StorageUnavailable
        return error

    def feed_token(self, user: User) -> FeedToken | None:
        prefs = self._of(user.subject)
        try:
            kept, owner = prefs.get_many([self.token, self.owner], strict=True)
            token = self._unsealed(kept)
            if token is not None and token == kept:  # made before tokens were sealed
                self._seal(prefs, token)
        except self._unavailable() as error:
            raise StorageAway(str(error)) from error
        if not token:
            return None
        return FeedToken(token, _created(owner))

    def _unsealed(self, kept: str) -> str | None:
        """The token of a kept value: sealed, or plain (an older one); None when there is none, or
        it was sealed under another secret (the feed still works: its digest is kept)."""
        if not kept:
            return None
        if not kept.startswith(SEALED_PREFIX):
            return kept
        try:
            return self._sealer.decrypt(kept.encode()).decode()
        except InvalidToken:
            return None

    def _sealed(self, token: str) -> list[tuple[Any, str]]:
        """What keeps `token`: sealed, and its digest (written together, in one transaction)."""
        return [(self.token, self._sealer.encrypt(token.encode()).decode()), (self.digest, digest_of(token))]

    def _seal(self, prefs: Any, token: str) -> None:
        prefs.set_many(self._sealed(token))

    def renew_feed_token(self, user: User) -> FeedToken:
        token = new_token()
        created = datetime.now(UTC)
        prefs = self._of(user.subject)
        try:
            owner = {"username": user.username, "email": user.email, "created": created.isoformat()}
            owner[GRANTS] = "\n".join(sorted(user.roles | user.groups))
            owner.update({CLAIM_PREFIX + name: value for name, value in user.claims})
            prefs.set_many([(self.owner, owner), *self._sealed(token)])
        except self._unavailable() as error:
            raise StorageAway(str(error)) from error
        return FeedToken(token, created)

    def revoke_feed_token(self, user: User) -> None:
        prefs = self._of(user.subject)
        try:
            prefs.clear(self.digest, self.token)
        except self._unavailable() as error:
            raise StorageAway(str(error)) from error

    def feed_owner(self, token: str) -> FeedOwner | None:
        if not token:
            return None
        holders = self._storage.preferences.holders
        try:
            subjects = holders(self.database, self.digest, digest_of(token))
            if not subjects:  # a token made before they were sealed: kept plain, sealed now
                subjects = holders(self.database, self.token, token)
                if len(subjects) == 1:
                    self._seal(self._of(subjects[0]), token)
            if len(subjects) != 1:
                return None
            owner_of = self._of(subjects[0])
            (owner,) = owner_of.get_many([self.owner], strict=True)
            signed_in = self._storage.last_sign_in(owner_of)
        except self._unavailable() as error:  # not "no such feed": a calendar may drop a 404
            raise StorageAway(str(error)) from error
        claims = tuple(
            (key.removeprefix(CLAIM_PREFIX), value)
            for key, value in owner.items()
            if key.startswith(CLAIM_PREFIX)
        )
        grants = owner.get(GRANTS)
        return FeedOwner(
            subjects[0],
            owner.get("username", ""),
            owner.get("email", ""),
            _created(owner),
            claims,
            None if grants is None else frozenset(filter(None, grants.split("\n"))),
            signed_in,
        )

    def sort_of(self, user: User) -> str | None:
        found: str = self._of(user.subject).get(self.sort)
        return found

    def save_sort(self, user: User, sort: str) -> None:
        try:
            self._of(user.subject).set(self.sort, sort)
        except self._unavailable() as error:
            raise StorageAway(str(error)) from error


def _created(owner: dict[str, str]) -> datetime:
    try:
        return datetime.fromisoformat(owner.get("created", ""))
    except ValueError:
        return datetime.now(UTC)


def install(app: Flask, keeper: Keeper) -> None:
    """Use `keeper` in this app (tests; another store)."""
    app.extensions[EXTENSION] = keeper


def keeper() -> Keeper:
    """This app's keeper: the one installed, else the database's when there is one, else none."""
    found: Keeper | None = current_app.extensions.get(EXTENSION)
    if found is not None:
        return found
    from ...state import portal_state  # noqa: PLC0415 - the state imports the widgets

    state = portal_state()
    database = getattr(state, "database", None)
    if database is not None:
        made = DatabaseKeeper(database, state.preferences, state.settings.secrets.secret_key)
        current_app.extensions[EXTENSION] = made
        return made
    return Unavailable()
