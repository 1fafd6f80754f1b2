"""What the Taiga cards keep per person in the portal's database: feed tokens and the sort choice.

Both live behind the small interfaces below, so that the cards work the same whatever keeps
them. The portal's database (issue 12, `portal/storage/`) is not part of this deployment yet:
until it is, `unavailable()` is used, which keeps nothing (the card then sorts for the page's
life only, and says that calendar feeds need the database). The in-memory keeper is for tests.
WAITING FOR ISSUE 12: a `DatabaseKeeper` on `portal.storage.Preference` plugs in here.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from flask import Flask, current_app

from ...identity import User

EXTENSION = "taiga_keeper"
TOKEN_BYTES = 24  # 192 bits, URL-safe: the feed's URL is its only credential


@dataclass(frozen=True)
class FeedOwner:
    """Whose deadlines a feed token gives: enough to cut the board without a session."""

    subject: str
    username: str
    email: str
    created: datetime

    def as_user(self) -> User:
        return User(subject=self.subject, username=self.username, name=self.username, email=self.email)


@dataclass(frozen=True)
class FeedToken:
    token: str
    created: datetime


class StorageMissing(Exception):
    """The portal's database is not there (not configured, or unreachable): nothing was kept."""


class Keeper(Protocol):
    """Per-person choices of the Taiga cards."""

    @property
    def available(self) -> bool:
        """False when nothing can be kept (no database)."""
        ...

    def feed_token(self, user: User) -> FeedToken | None:
        """The user's current feed token, or None."""
        ...

    def renew_feed_token(self, user: User) -> FeedToken:
        """A new token for the user; the previous one stops working at once."""
        ...

    def revoke_feed_token(self, user: User) -> None:
        """No token any more: the feed's URL answers 404."""
        ...

    def feed_owner(self, token: str) -> FeedOwner | None:
        """Whose feed this token opens, or None (unknown or revoked)."""
        ...

    def sort_of(self, user: User) -> str | None:
        """The user's saved sort of the tasks card, or None."""
        ...

    def save_sort(self, user: User, sort: str) -> None:
        """Keep the user's sort for every device."""
        ...


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


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
        owner = FeedOwner(user.subject, user.username, user.email, self._clock())
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


def install(app: Flask, keeper: Keeper) -> None:
    """Use `keeper` in this app (tests; the database-backed one once the database exists)."""
    app.extensions[EXTENSION] = keeper


def keeper() -> Keeper:
    """This app's keeper: the one installed, else "unavailable"."""
    found: Keeper | None = current_app.extensions.get(EXTENSION)
    return found if found is not None else Unavailable()
