"""Per-user preferences, typed: a feature declares each of its choices once and reads it back.

    from portal.storage import Preference, user_preferences

    SORT = Preference("tasks", "sort", Literal["due", "status", "project"], "due")

    prefs = user_preferences()          # the current user's (in a request)
    order = prefs.get(SORT)             # "due" until the user chose; also while the database is down
    prefs.set(SORT, "status")           # validated; StorageUnavailable if the database is down

A stored value that no longer validates (the type changed) reads as the default. Values are
small JSON documents; `holders(pref, value)` finds who holds a value (a calendar feed's token).
Writes from a page go through the guard like every change (portal/web/guard.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete, select

from ..caching.broadcast import Broadcast, KeptRecords
from ..identity import User, current_user
from .database import Database, StorageUnavailable, upsert
from .models import UserPreference, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_VALUE_BYTES = 8192


@dataclass(frozen=True)
class Preference(Generic[T]):
    """One choice: where it belongs (`namespace`, a widget's slug), its name, type and default.

    `kind` is anything pydantic validates: bool, str, Literal[...], a frozen BaseModel, a tuple.
    """

    namespace: str
    name: str
    kind: Any
    default: T
    _adapter: TypeAdapter[T] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for part in (self.namespace, self.name):
            if not _NAME.fullmatch(part):
                raise ValueError(f"preference names are short lower-case words: {part!r}")
        object.__setattr__(self, "_adapter", TypeAdapter(self.kind))

    def validate(self, value: object) -> T:
        """The value as this preference's type; ValueError when it is not one."""
        try:
            return self._adapter.validate_python(value)
        except ValidationError as error:
            raise ValueError(f"{self.namespace}.{self.name}: {error.errors()[0]['msg']}") from None

    def dump(self, value: T) -> Any:
        dumped = self._adapter.dump_python(value, mode="json")
        if len(self._adapter.dump_json(value)) > MAX_VALUE_BYTES:
            raise ValueError(f"{self.namespace}.{self.name}: the value is too large")
        return dumped


Stored = dict[tuple[str, str], Any]  # a user's stored values, by (namespace, name)
TOPIC = "preferences"  # what the broadcast says when a user's preferences changed


class KeptPreferences:
    """Each user's stored preferences as a worker last read them, until one of them changes.

    Cards read a choice on every poll (the incidents card's filter, the tasks card's sort):
    kept here, that costs no query. A change made in any worker of any replica reaches every
    worker through the broadcast, as an invalidation of the cache does.
    """

    def __init__(self, broadcast: Broadcast, size: int = 10_000) -> None:
        self.broadcast = broadcast
        self._kept: KeptRecords[Stored] = KeptRecords(broadcast, size)
        broadcast.subscribe(TOPIC, self._kept.forget)

    def read(self, subject: str, load: Callable[[], Stored]) -> Stored:
        """The subject's kept values, else `load()`'s (kept unless something changed meanwhile)."""
        self.broadcast.catch_up()
        found = self._kept.get(subject)
        if found is None:
            mark = self._kept.mark()
            found = load()
            self._kept.keep(subject, found, mark)
        return found

    def changed(self, subject: str) -> None:
        """The subject's preferences changed: every worker reads them again."""
        self._kept.forget(subject)
        self.broadcast.publish(TOPIC, subject)


class Preferences:
    """One user's preferences in one database."""

    def __init__(self, database: Database | None, subject: str, kept: KeptPreferences | None = None) -> None:
        self.database = database
        self.subject = subject
        self.kept = kept

    def get(self, preference: Preference[T]) -> T:
        """The user's choice, or the default (not chosen, no longer valid, database unreachable)."""
        found: T = self.get_many([preference])[0]
        return found

    def get_many(self, preferences: Sequence[Preference[Any]], *, strict: bool = False) -> list[Any]:
        """Several choices in one query, in the order asked.

        While the database is away, the defaults; `strict`: StorageUnavailable instead, for a
        value whose default would mislead (a feed shown as "none" while it exists).
        """
        found: Stored = {}
        if self.database is not None:
            try:
                found = self.kept.read(self.subject, self._load) if self.kept else self._load()
            except StorageUnavailable:
                if strict:
                    raise
        values = []
        for preference in preferences:
            key = (preference.namespace, preference.name)
            if key not in found:
                values.append(preference.default)
                continue
            try:
                values.append(preference.validate(found[key]))
            except ValueError:
                log.warning(
                    "stored preference no longer valid: using its default",
                    extra={"event": "preference_invalid", "preference": ".".join(key)},
                )
                values.append(preference.default)
        return values

    def _load(self) -> Stored:
        """Every value the user has stored (a few small documents), in one query."""
        assert self.database is not None
        with self.database.session() as session:
            rows = session.execute(
                select(UserPreference.namespace, UserPreference.name, UserPreference.value).where(
                    UserPreference.subject == self.subject
                )
            )
            return {(str(namespace), str(name)): value for namespace, name, value in rows}

    def _changed(self) -> None:
        if self.kept is not None:
            self.kept.changed(self.subject)

    def set(self, preference: Preference[T], value: T) -> None:
        """Save a choice (validated first: ValueError); StorageUnavailable when it cannot be saved."""
        self.set_many([(preference, value)])

    def set_many(self, choices: Sequence[tuple[Preference[Any], Any]]) -> None:
        """Save several choices in one transaction: all of them, or none (StorageUnavailable)."""
        stored = [(preference, preference.dump(preference.validate(value))) for preference, value in choices]
        with self._session() as session:
            for preference, value in stored:
                upsert(
                    session,
                    UserPreference,
                    {
                        "subject": self.subject,
                        "namespace": preference.namespace,
                        "name": preference.name,
                        "value": value,
                        "updated_at": utcnow(),
                    },
                    ("subject", "namespace", "name"),
                )
        self._changed()

    def clear(self, *preferences: Preference[Any]) -> None:
        """Forget choices (in one transaction): the defaults apply again."""
        with self._session() as session:
            for preference in preferences:
                session.execute(
                    delete(UserPreference).where(
                        UserPreference.subject == self.subject,
                        UserPreference.namespace == preference.namespace,
                        UserPreference.name == preference.name,
                    )
                )
        self._changed()

    def _session(self) -> Any:
        if self.database is None:
            raise StorageUnavailable("no database")
        return self.database.session()


def holders(database: Database, preference: Preference[T], value: T) -> list[str]:
    """The subjects whose choice for `preference` is `value` (who owns this feed token, say)."""
    wanted = preference.dump(preference.validate(value))
    with database.session() as session:
        rows = session.execute(
            select(UserPreference.subject, UserPreference.value).where(
                UserPreference.namespace == preference.namespace, UserPreference.name == preference.name
            )
        )
        return sorted(str(subject) for subject, stored in rows if stored == wanted)


def user_preferences(user: User | None = None) -> Preferences:
    """The preferences of `user` (default: the current request's) in the portal's database."""
    from ..state import portal_state  # noqa: PLC0415 - state imports this package

    who = user or current_user()
    if who is None:
        raise LookupError("nobody is logged in")
    state = portal_state()
    return Preferences(state.database, who.subject, state.preferences)
