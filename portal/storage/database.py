"""`Database`: the engine, sessions, a reachability check, and migrations under a lock."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..url_credentials import masked_query

if TYPE_CHECKING:
    from ..config import DatabaseSection

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_FILE = "portal.db"
# Any fixed number: the advisory lock every replica takes before migrating (pg_advisory_lock).
MIGRATION_LOCK_KEY = 0x706F7274616C  # "portal"
RETRY_AFTER = 5.0  # seconds between two attempts to reach a database that did not answer


class StorageUnavailable(Exception):
    """The database cannot be reached (or refused the statement): try again later."""


def database_url(section: DatabaseSection, password: str | None) -> URL:
    """PostgreSQL from `database.url` (its password from the Secret), else SQLite in `data_dir`."""
    if section.url:
        url = make_url(section.url)
        if url.get_backend_name() == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
            if password:
                url = url.set(password=password)
        return url
    return URL.create("sqlite+pysqlite", database=str(section.data_dir.resolve() / SQLITE_FILE))


def alembic_config() -> Config:
    """Alembic's configuration without an ini file: the scripts are in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@cache
def head_revision() -> str | None:
    """The newest migration (read once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def problem_of(error: Exception) -> str:
    """The driver's own words for a failure, first line ("password authentication failed for user
    "portal"", "database "portal" does not exist"): a wrong password, a missing database and a
    network that drops the connection read differently in the logs. The driver never says the
    password."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0][:300] if lines else type(cause).__name__


class Database:
    """The portal's database: one engine per application, sessions, migrations.

    The schema is brought to the newest revision at start (`upgrade()`); when the database
    cannot be reached then, the portal starts anyway and tries again on `ready()` (the
    readiness probe, and every use) at most every RETRY_AFTER seconds.
    """

    def __init__(self, url: URL | str, connect_timeout: float = 5.0, pool_size: int = 5) -> None:
        self.url = make_url(url)
        self.sqlite = self.url.get_backend_name() == "sqlite"
        if self.sqlite:
            path = Path(self.url.database or SQLITE_FILE)
            self.sqlite_path: Path | None = path
            self.engine: Engine = create_engine(
                self.url,
                connect_args={"timeout": max(connect_timeout, 5.0), "check_same_thread": False},
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.sqlite_path = None
            self.engine = create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                pool_timeout=connect_timeout,
                connect_args={"connect_timeout": max(1, round(connect_timeout))},
            )
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite: sessions that read, then write what they read, take the write lock first.
        self.writer_sessions = sessionmaker(
            self.engine.execution_options(sqlite_begin="BEGIN IMMEDIATE"), expire_on_commit=False
        )
        self._migrated = False
        self._failed_at: float | None = None
        self.last_problem = ""  # what the driver said of the last failure, for the logs
        self._attempt_lock = threading.Lock()

    @classmethod
    def from_settings(cls, section: DatabaseSection, password: str | None) -> Database:
        return cls(database_url(section, password), section.connect_timeout, section.pool_size)

    @property
    def kind(self) -> str:
        """ "sqlite" or "postgresql" (for logs and /readyz)."""
        return "sqlite" if self.sqlite else "postgresql"

    def describe(self) -> str:
        """The URL without its password (before the host or in the query), for logs."""
        return masked_query(self.url.render_as_string(hide_password=True))

    # --- sessions ---------------------------------------------------------------------------

    @contextmanager
    def session(self, serialised: str | None = None) -> Iterator[Session]:
        """A session in one transaction, committed at the end; StorageUnavailable on failure.

        `serialised` names what the transaction reads and then writes (a user's layout): until
        it ends, no other transaction serialised on the same name, in any worker or replica,
        begins. SQLite has one writer at a time (BEGIN IMMEDIATE); PostgreSQL takes an advisory
        lock on the name, which holds even while the row does not exist yet (FOR UPDATE would
        lock nothing then).

        After a failure, sessions fail at once for RETRY_AFTER seconds: a page does not wait on
        a connect timeout while the database is away (the readiness probe still tries).
        """
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER:
            raise StorageUnavailable("the database did not answer a moment ago")
        if not self.ready():
            raise StorageUnavailable("the database is not reachable")
        sessions = self.sessions if serialised is None or not self.sqlite else self.writer_sessions
        try:
            with sessions.begin() as session:
                if serialised is not None and not self.sqlite:
                    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(serialised)})
                yield session
        except SQLAlchemyError as error:
            self._failed(error)
            raise StorageUnavailable(str(error.__class__.__name__)) from error

    def _failed(self, error: Exception) -> None:
        self._failed_at = time.monotonic()
        self.last_problem = problem_of(error)
        log.warning(
            "database unavailable",
            extra={
                "event": "database_unavailable",
                "database": self.kind,
                "error": type(error).__name__,
                "detail": self.last_problem,
            },
        )

    # --- readiness and migrations -----------------------------------------------------------

    def ping(self) -> bool:
        """Whether the database answers now."""
        try:
            with self.engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError as error:
            self._failed(error)
            return False
        self._failed_at = None
        return True

    def ready(self) -> bool:
        """Reachable and migrated (migrating now if it was not, without waiting on a retry)."""
        if self._migrated:
            return True
        with self._attempt_lock:
            if self._migrated:
                return True
            if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER:
                return False
            try:
                self.upgrade()
            except (SQLAlchemyError, OSError) as error:
                self._failed(error)
                return False
            self._failed_at = None
            return self._migrated

    def current_revision(self) -> str | None:
        """The revision the database is at (None: empty)."""
        if self.sqlite_path is not None and not self.sqlite_path.exists():
            return None  # not created yet (and not created by asking)
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to `revision`, one process at a time (every replica may try)."""
        logging.getLogger("alembic").setLevel(logging.WARNING)  # one line of ours says what changed
        if self.sqlite_path is not None:
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        with self.engine.connect() as connection:
            if revision == "head" and _revision(connection) == head_revision():
                self._migrated = True
                return
        with self._migration_lock() as connection:
            before = _revision(connection)
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
            after = _revision(connection)
        if before != after:
            log.info(
                "database migrated",
                extra={"event": "database_migrated", "database": self.kind, "from": before, "to": after},
            )
        self._migrated = after == head_revision()

    def downgrade(self, revision: str) -> None:
        """Take the schema back to `revision` (tests, and an operator rolling back)."""
        with self._migration_lock() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
            connection.commit()
        self._migrated = False

    @contextmanager
    def _migration_lock(self) -> Iterator[Connection]:
        """A connection held while no other process migrates this database."""
        if self.sqlite_path is not None:
            lock_file = self.sqlite_path.with_name(self.sqlite_path.name + ".migrate.lock")
            with lock_file.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
                with self.engine.connect() as connection:
                    yield connection
            return
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
                connection.commit()

    def dispose(self) -> None:
        """Close pooled connections (before a fork: each worker opens its own)."""
        self.engine.dispose()


def _revision(connection: Connection) -> str | None:
    found = MigrationContext.configure(connection).get_current_revision()
    connection.rollback()  # reading the version table opened a transaction
    return found


def lock_key(name: str) -> int:
    """A PostgreSQL advisory lock's key for `name`: the same in every process (a signed 64-bit
    integer, as pg_advisory_xact_lock takes)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"portal-lock").digest()
    return int.from_bytes(digest, "big", signed=True)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    """WAL lets readers go on while one writer writes; wait for the writer rather than fail.

    Transactions are begun by `_sqlite_begin`, not by the driver: left to itself, pysqlite
    begins one only at the first write, so what a session read before it was not part of it."""
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA busy_timeout=10000")
    # WAL is kept in the file once set; setting it needs the database to itself for a moment,
    # and SQLite answers "locked" at once (no busy wait) while another connection migrates it.
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == 99:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    """Begin SQLAlchemy's transaction on SQLite: BEGIN (reads see one snapshot), or BEGIN
    IMMEDIATE for a session that reads what it will write (`Database.writer_sessions`). A
    deferred transaction that read and then writes after another connection wrote would fail
    at once with "database is locked"; an immediate one waits (busy_timeout) for the writer."""
    connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


def upsert(
    session: Session,
    table: type[object],
    values: dict[str, object],
    keys: tuple[str, ...],
    increment: str | None = None,
) -> None:
    """Insert a row or replace its other columns, in one statement (concurrent writers: last wins).

    `increment` names an integer column that counts the updates instead of taking the new value.
    """
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # noqa: PLC0415
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert  # noqa: PLC0415

    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).values(**values)
    changed: dict[str, Any] = {k: statement.excluded[k] for k in values if k not in keys}
    if increment is not None:
        changed[increment] = getattr(table, increment) + 1
    session.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changed))
