"""The portal's own database on SQLite and on a real PostgreSQL: migrations (from an empty
database, from the previous revision, two starts at once), the typed preferences API, and
`python -m portal db upgrade`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
import redis
import yaml
from pydantic import BaseModel
from sqlalchemy import event, inspect, select, text

from portal.caching.broadcast import RedisBroadcast
from portal.layout.merge import merge_layouts
from portal.layout.model import CardChoice, LayoutDocument, layout_basis
from portal.layout.store import Saved, save_document, saved_document
from portal.storage import Database, Preference, Preferences, StorageUnavailable
from portal.storage.database import head_revision
from portal.storage.models import UserPreference
from portal.storage.preferences import KeptPreferences, holders

from .conftest import SECRET, example_config
from .support.postgres import PostgresServer
from .support.processes import ROOT, RedisServer, eventually

pytestmark = pytest.mark.peers


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite+pysqlite:///{tmp_path / 'data' / 'portal.db'}"
    postgres: PostgresServer = request.getfixturevalue("postgres")
    return postgres.create_database(f"storage_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def database(url: str) -> Iterator[Database]:
    found = Database(url)
    yield found
    found.dispose()


def _tables(database: Database) -> set[str]:
    with database.engine.connect() as connection:
        return set(inspect(connection).get_table_names())


# --- migrations ---------------------------------------------------------------------------------


def test_from_an_empty_database_to_the_newest_revision(database: Database) -> None:
    assert database.current_revision() is None
    assert database.ready()
    assert database.current_revision() == head_revision() == "0002"
    assert {"user_layouts", "user_preferences", "alembic_version"} <= _tables(database)
    database.upgrade()  # again: nothing to do
    assert database.current_revision() == "0002"


def test_from_the_previous_revision_data_is_kept(database: Database) -> None:
    database.upgrade("0001")
    assert "user_preferences" not in _tables(database)
    with database.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO user_layouts (subject, layout, revision, updated_at) VALUES (:s, :l, 3, :t)"),
            {"s": "someone", "l": json.dumps({"cards": [{"slug": "status"}]}), "t": datetime.now(UTC)},
        )
    database.upgrade()
    assert database.current_revision() == "0002"
    with database.engine.connect() as connection:
        row = connection.execute(
            text("SELECT layout, revision FROM user_layouts WHERE subject = 'someone'")
        ).one()
    stored = row[0] if isinstance(row[0], dict) else json.loads(row[0])
    assert stored == {"cards": [{"slug": "status"}]}
    assert row[1] == 3
    Preferences(database, "someone").set(FILTER, "critical")
    database.downgrade("0001")  # and back: the newest migration is reversible
    assert "user_preferences" not in _tables(database)
    assert "user_layouts" in _tables(database)


def test_two_replicas_starting_together_migrate_once(url: str) -> None:
    """Each in its own process, as two pods would: the lock makes one wait for the other."""
    script = (
        "import sys; from portal.storage import Database; d = Database(sys.argv[1]); "
        "d.upgrade(); print(d.current_revision())"
    )
    if url.startswith("sqlite"):
        Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, url], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outcomes = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], [err.decode()[-2000:] for _, err in outcomes]
    assert [out.decode().strip() for out, _ in outcomes] == ["0002"] * 3


def test_migrations_in_threads_of_one_process_too(url: str) -> None:
    databases = [Database(url) for _ in range(3)]
    errors: list[BaseException] = []

    def start(database: Database) -> None:
        try:
            database.upgrade()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(d,)) for d in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert {d.current_revision() for d in databases} == {"0002"}
    for database in databases:
        database.dispose()


# --- a layout saved by two workers at once -------------------------------------------------------


def _folded(*slugs: str) -> LayoutDocument:
    return LayoutDocument(
        cards=tuple(CardChoice(slug=slug, collapsed=slug in slugs) for slug in ("alpha", "beta", "gamma"))
    )


@pytest.mark.parametrize("saved_before", [True, False], ids=["saved-before", "first-save"])
def test_two_workers_saving_one_layout_at_once_keep_both_changes(url: str, saved_before: bool) -> None:
    """Camille folds "alpha" in one tab and "beta" in another at the same moment; each save lands
    on another gunicorn worker (its own connection). The first worker is held just before it
    writes: the second must wait for it, then find its layout changed and merge onto it. Read
    outside the first's transaction, it would have passed its check and been written over."""
    first, second = Database(url), Database(url)
    base = _folded()
    if saved_before:
        save_document(first, "camille", base)
    basis = layout_basis(base if saved_before else None)
    held, second_done = threading.Event(), threading.Event()

    def hold_before_writing(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO USER_LAYOUTS") and not held.is_set():
            held.set()
            second_done.wait(1.5)  # long enough for an unserialised second save to finish

    event.listen(first.engine, "before_cursor_execute", hold_before_writing)
    outcome: list[Saved] = []

    def second_tab() -> None:
        held.wait(30)
        outcome.append(
            save_document(
                second,
                "camille",
                _folded("beta"),
                basis,
                lambda saved: merge_layouts(base, _folded("beta"), saved or base),
            )
        )
        second_done.set()

    thread = threading.Thread(target=second_tab)
    thread.start()
    try:
        save_document(first, "camille", _folded("alpha"), basis, lambda saved: saved or base)
    finally:
        thread.join(30)
        first.dispose()
    (saved,) = outcome
    assert saved.merged
    assert saved_document(second, "camille") == _folded("alpha", "beta")
    second.dispose()


# --- preferences --------------------------------------------------------------------------------


class Feed(BaseModel):
    model_config = {"frozen": True}

    token: str
    created: str


SORT = Preference("tasks", "sort", Literal["due", "status", "project"], "due")
FILTER = Preference("incidents", "severity", Literal["all", "warning", "critical"], "all")
FEED: Preference[Feed | None] = Preference("deadlines", "feed", Feed | None, None)


def test_preferences_default_then_chosen_per_user(database: Database) -> None:
    database.upgrade()
    mine, theirs = Preferences(database, "user-a"), Preferences(database, "user-b")
    assert mine.get(SORT) == "due"
    mine.set(SORT, "status")
    mine.set(SORT, "project")  # replaced, not added
    assert mine.get(SORT) == "project"
    assert theirs.get(SORT) == "due"
    theirs.set(FILTER, "critical")
    assert mine.get_many([SORT, FILTER]) == ["project", "all"]
    assert theirs.get_many([SORT, FILTER]) == ["due", "critical"]
    mine.clear(SORT)
    assert mine.get(SORT) == "due"


def test_several_choices_are_saved_and_forgotten_together_or_not_at_all(database: Database) -> None:
    """A feed's sealed token and its digest go together: never one without the other."""
    database.upgrade()
    mine = Preferences(database, "user-a")
    mine.set_many([(SORT, "status"), (FILTER, "critical")])
    assert mine.get_many([SORT, FILTER]) == ["status", "critical"]
    with pytest.raises(ValueError, match=r"incidents\.severity"):
        mine.set_many([(SORT, "project"), (FILTER, "nonsense")])  # refused before anything is written
    assert mine.get_many([SORT, FILTER]) == ["status", "critical"]
    mine.clear(SORT, FILTER)
    assert mine.get_many([SORT, FILTER]) == ["due", "all"]
    mine.set_many([(SORT, "status"), (FILTER, "critical")])
    # The database fails on the second write (a trigger): the first one is rolled back with it.
    refuse = {
        "sqlite": [
            "CREATE TRIGGER refuse_severity BEFORE UPDATE ON user_preferences "
            "WHEN NEW.name = 'severity' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ],
        "postgresql": [
            "CREATE FUNCTION refuse_severity() RETURNS trigger AS $$ BEGIN "
            "IF NEW.name = 'severity' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ "
            "LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_severity BEFORE UPDATE ON user_preferences "
            "FOR EACH ROW EXECUTE FUNCTION refuse_severity()",
        ],
    }[database.engine.dialect.name]
    with database.engine.begin() as connection:
        for statement in refuse:
            connection.exec_driver_sql(statement)
    with pytest.raises(StorageUnavailable):
        mine.set_many([(SORT, "project"), (FILTER, "warning")])
    with database.engine.begin() as connection:  # read past the portal's pause after a failure
        kept = dict(connection.execute(select(UserPreference.name, UserPreference.value)).all())
        connection.exec_driver_sql(
            "DROP TRIGGER refuse_severity" + (" ON user_preferences" if refuse[1:] else "")
        )
    assert kept == {"sort": "status", "severity": "critical"}


def test_a_worker_reads_a_users_preferences_once_until_any_worker_changes_one(
    database: Database, redis_server: RedisServer
) -> None:
    """Cards read a choice on every poll: each worker queries the database once per user, and
    a change made in another worker (or replica) reaches it through the broadcast."""
    database.upgrade()
    queries: list[str] = []
    event.listen(database.engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    broadcasts = [RedisBroadcast(redis.Redis.from_url(redis_server.url), "prefs-test") for _ in range(2)]
    assert all(eventually(lambda b=b: b.epoch is not None) for b in broadcasts)
    here, there = (Preferences(database, "user-a", KeptPreferences(b)) for b in broadcasts)
    try:
        assert [here.get(SORT) for _ in range(20)] == ["due"] * 20
        reads = [
            q for q in queries if "user_preference" in q.lower() and q.lstrip().upper().startswith("SELECT")
        ]
        assert len(reads) == 1
        there.set(SORT, "status")
        assert eventually(lambda: here.get(SORT) == "status")
        assert here.get(FILTER) == "all"
        there.clear(SORT)
        assert eventually(lambda: here.get(SORT) == "due")
    finally:
        for broadcast in broadcasts:
            broadcast.close()


def test_preferences_are_typed(database: Database) -> None:
    database.upgrade()
    prefs = Preferences(database, "user-a")
    with pytest.raises(ValueError, match=r"tasks\.sort"):
        prefs.set(SORT, "random")  # type: ignore[arg-type]
    assert prefs.get(SORT) == "due"
    feed = Feed(token="t0k3n", created="2026-12-01")
    prefs.set(FEED, feed)
    assert prefs.get(FEED) == feed
    assert holders(database, FEED, feed) == ["user-a"]
    assert holders(database, FEED, Feed(token="other", created="2026-12-01")) == []
    with pytest.raises(ValueError, match="too large"):
        prefs.set(FEED, Feed(token="x" * 10_000, created=""))


def test_a_stored_value_no_longer_valid_reads_as_the_default(database: Database) -> None:
    database.upgrade()
    old = Preference("tasks", "sort", str, "due")
    Preferences(database, "user-a").set(old, "priority")  # a choice the widget no longer offers
    assert Preferences(database, "user-a").get(SORT) == "due"


def test_preferences_without_the_database(tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("not a directory")
    away = Database(f"sqlite+pysqlite:///{blocker / 'data' / 'portal.db'}")
    prefs = Preferences(away, "user-a")
    assert prefs.get(SORT) == "due"  # the default, and the widget goes on
    with pytest.raises(StorageUnavailable):
        prefs.set(SORT, "status")
    with pytest.raises(ValueError, match="short lower-case"):
        Preference("Tasks", "sort order", str, "")


# --- the command --------------------------------------------------------------------------------


class DbCommand:
    """`python -m portal db ...` in a process of its own, with `database` as the configuration's
    database section (changed with `use`)."""

    def __init__(self, directory: Path, database: dict[str, object]) -> None:
        self.config = example_config()
        self.path = directory / "portal.yaml"
        self.env = {
            **os.environ,
            "PORTAL_CONFIG": str(self.path),
            "PORTAL_SECRET_KEY": SECRET,
            "PORTAL_OIDC_CLIENT_SECRET": "x",
        }
        self.use(database)

    def use(self, database: dict[str, object]) -> None:
        self.config["database"] = database
        self.path.write_text(yaml.safe_dump(self.config), encoding="utf-8")

    def __call__(self, *args: str, given: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        command = [sys.executable, "-m", "portal", "db", *args]
        return subprocess.run(command, cwd=ROOT, env=self.env, input=given, capture_output=True, check=False)


def test_python_m_portal_db_upgrade(tmp_path: Path) -> None:
    run = DbCommand(tmp_path, {"data_dir": str(tmp_path / "data")})
    current = run("current")
    assert current.returncode == 0, current.stderr
    assert b"empty (newest: 0002)" in current.stdout
    upgraded = run("upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip().endswith(b"empty -> 0002")
    assert (tmp_path / "data" / "portal.db").is_file()
    run.use({"url": "postgresql+psycopg://portal@127.0.0.1:1/portal", "connect_timeout": 1})
    unreachable = run("upgrade")
    assert unreachable.returncode == 1
    assert b"database unreachable: postgresql+psycopg://portal@127.0.0.1:1/portal" in unreachable.stderr


def test_a_sqlite_database_backed_up_and_restored_while_the_portal_runs(tmp_path: Path) -> None:
    """`db backup -` out through stdout (what `kubectl exec ... > file` keeps: the images have no
    tar for `kubectl cp`), people's layouts changed and lost, `db restore -` back through stdin."""
    run = DbCommand(tmp_path, {"data_dir": str(tmp_path / "data")})
    live = Database(f"sqlite:///{tmp_path / 'data' / 'portal.db'}")
    live.upgrade()
    save_document(live, "camille", _folded("alpha"))
    backup = run("backup", "-")
    assert backup.returncode == 0, backup.stderr
    assert backup.stdout.startswith(b"SQLite format 3") and b"bytes)" in backup.stderr
    save_document(live, "camille", _folded("beta"))  # changed since, and one more person
    save_document(live, "dominique", _folded("gamma"))
    assert run("restore", "-", given=b"not a database").returncode == 1  # refused: nothing changed
    assert saved_document(live, "camille") == _folded("beta")
    restored = run("restore", "-", given=backup.stdout)
    assert restored.returncode == 0, restored.stderr
    assert saved_document(live, "camille") == _folded("alpha")  # read by the running portal's connection
    assert saved_document(live, "dominique") is None
    live.dispose()
    run.use({"url": "postgresql+psycopg://portal@127.0.0.1:1/portal"})
    postgres = run("backup", "-")
    assert postgres.returncode == 2 and b"pg_dump" in postgres.stderr
