"""`python -m portal check-config [FILE]`: validate the configuration and secrets, start nothing.

`python -m portal db upgrade` brings the portal's database to the newest schema (what every
start does, under the same lock); `python -m portal db current` prints its revision.
`python -m portal db backup FILE` writes a consistent copy of a SQLite database (people's layouts
and preferences) while the portal runs, `db restore FILE` puts one back; FILE "-" is stdout or
stdin, for `kubectl exec` (the images have no tar for `kubectl cp`). PostgreSQL: pg_dump.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .config import ConfigError, PortalConfig, Settings, load_settings
from .config_errors import as_helm_values
from .insecure_settings import insecure_settings


def main(argv: list[str] | None = None) -> int:
    """Print the verdict on the configuration; exit 0 when valid, 2 when not."""
    parser = argparse.ArgumentParser(prog="python -m portal")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate PORTAL_CONFIG and its secrets")
    check.add_argument("file", nargs="?", help="configuration file (default: $PORTAL_CONFIG)")
    check.add_argument(
        "--helm",
        action="store_true",
        help="name each key as the Helm chart's values do (config.…, secrets.env.…)",
    )
    db = commands.add_parser("db", help="the portal's own database (layouts, preferences)")
    db.add_argument(
        "action",
        choices=("upgrade", "current", "backup", "restore"),
        help="migrate to the newest schema, print the revision, or copy a SQLite database out or back",
    )
    db.add_argument("file", nargs="?", help="backup and restore: the copy's file, '-' for stdout or stdin")
    db.add_argument("--config", help="configuration file (default: $PORTAL_CONFIG)")
    args = parser.parse_args(argv)
    if args.command == "db" and args.action in ("backup", "restore"):
        return _copy(args.action, args.file, args.config)
    if args.command == "db":
        return _database(args.action, args.config)

    settings = _settings(args.file, helm=args.helm)
    if settings is None:
        return 2
    config = settings.config
    ready, unconfigured = _cards(config, helm=args.helm)
    print(
        f"configuration OK: {settings.source} "
        f"({len(ready)} widgets ready to show: {', '.join(ready) or 'none'}; {len(config.tiles)} tiles)"
    )
    for warning in insecure_settings(config, settings.secrets.upstreams):
        print(f"warning: {warning}", file=sys.stderr)
    if unconfigured:
        print(
            "enabled but not configured (their card says so): " + "; ".join(unconfigured),
            file=sys.stderr,
        )
    return 0


def _cards(config: PortalConfig, *, helm: bool = False) -> tuple[list[str], list[str]]:
    """The enabled widgets whose upstreams and settings are configured, and the others, each
    with what it lacks ("tasks: upstreams.taiga"; with `helm`, as the chart's values name it)."""
    from .widgets import WIDGETS  # noqa: PLC0415 - the widgets import the configuration

    ready, unconfigured = [], []
    for widget in WIDGETS:
        section = config.widget(widget.slug)
        if not section.enabled:
            continue
        if widget.is_configured(section, config):
            ready.append(widget.slug)
            continue
        prefix = "config." if helm else ""
        missing = [f"{prefix}upstreams.{name}" for name in widget.missing_upstreams(config)]
        unconfigured.append(
            f"{widget.slug}: {', '.join(missing) or f'{prefix}widgets.{widget.slug} (what it shows)'}"
        )
    return ready, unconfigured


def _settings(file: str | None, *, helm: bool = False) -> Settings | None:
    """The configuration and secrets, or None once what is wrong with them is printed (with
    `helm`, each key named as the chart's values name it)."""
    try:
        return load_settings(os.environ, file)
    except ConfigError as error:
        said = as_helm_values(f"{error}") if helm else f"{error}"
        print(f"configuration invalid: {said}", file=sys.stderr)
        return None


def _database(action: str, file: str | None) -> int:
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - only this command needs the database

    from .storage.database import Database, head_revision  # noqa: PLC0415

    settings = _settings(file)
    if settings is None:
        return 2
    database = Database.from_settings(settings.config.database, settings.secrets.database_password)
    try:
        if action == "upgrade":
            before = database.current_revision()
            database.upgrade()
            print(f"database {database.describe()}: {before or 'empty'} -> {database.current_revision()}")
        else:
            current = database.current_revision() or "empty"
            print(f"database {database.describe()}: {current} (newest: {head_revision()})")
    except (SQLAlchemyError, OSError) as error:
        print(
            f"database unreachable: {database.describe()}: {type(error).__name__}: {error}", file=sys.stderr
        )
        return 1
    finally:
        database.dispose()
    return 0


def _copy(action: str, file: str | None, config_file: str | None) -> int:
    """A SQLite database copied out (backup) or back (restore) through SQLite's backup API, which
    copies a consistent state while the portal's workers go on reading and writing."""
    import sqlite3  # noqa: PLC0415 - only these commands need it

    from .storage.database import Database  # noqa: PLC0415

    if not file:
        print(
            f"db {action}: name the copy's file, or '-' for {'stdout' if action == 'backup' else 'stdin'}",
            file=sys.stderr,
        )
        return 2
    settings = _settings(config_file)
    if settings is None:
        return 2
    database = Database.from_settings(settings.config.database, settings.secrets.database_password)
    path = database.sqlite_path
    database.dispose()
    if path is None:
        print(
            f"db {action}: {database.describe()} is PostgreSQL: use pg_dump and pg_restore"
            " (or your operator's backups, such as CloudNativePG's)",
            file=sys.stderr,
        )
        return 2
    if action == "backup":
        if not path.is_file():
            print(f"db backup: no database at {path} yet", file=sys.stderr)
            return 1
        with sqlite3.connect(path) as live, sqlite3.connect(":memory:") as copy:
            live.backup(copy)
            data = _rollback_journal(copy.serialize())
        if file == "-":
            sys.stdout.buffer.write(data)
        else:
            Path(file).write_bytes(data)
        print(f"db backup: {path} ({len(data):,} bytes)", file=sys.stderr)
        return 0
    data = _rollback_journal(sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes())
    with sqlite3.connect(":memory:") as copy:
        try:
            copy.deserialize(data)
            copy.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            print("db restore: not a SQLite database: nothing was changed", file=sys.stderr)
            return 1
        with sqlite3.connect(path, timeout=30) as live:
            copy.backup(live)
    print(f"db restore: {path} ({len(data):,} bytes)", file=sys.stderr)
    return 0


def _rollback_journal(data: bytes) -> bytes:
    """A database image marked for a rollback journal, as SQLite loads one in memory. The live
    file is in WAL mode (header bytes 18 and 19 are 2), which an in-memory image cannot be; the
    database restored into keeps its own mode."""
    if data[:16] == b"SQLite format 3\x00" and len(data) > 19:
        return data[:18] + b"\x01\x01" + data[20:]
    return data


if __name__ == "__main__":
    sys.exit(main())
