"""`python -m portal check-config [FILE]`: validate the configuration and secrets, start nothing.

`python -m portal db upgrade` brings the portal's database to the newest schema (what every
start does, under the same lock); `python -m portal db current` prints its revision.
"""

from __future__ import annotations

import argparse
import os
import sys

from .config import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    """Print the verdict on the configuration; exit 0 when valid, 2 when not."""
    parser = argparse.ArgumentParser(prog="python -m portal")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate PORTAL_CONFIG and its secrets")
    check.add_argument("file", nargs="?", help="configuration file (default: $PORTAL_CONFIG)")
    db = commands.add_parser("db", help="the portal's own database (layouts, preferences)")
    db.add_argument(
        "action", choices=("upgrade", "current"), help="migrate to the newest schema, or print the revision"
    )
    db.add_argument("--config", help="configuration file (default: $PORTAL_CONFIG)")
    args = parser.parse_args(argv)
    if args.command == "db":
        return _database(args.action, args.config)

    try:
        settings = load_settings(os.environ, args.file)
    except ConfigError as error:
        print(f"configuration invalid: {error}", file=sys.stderr)
        return 2
    config = settings.config
    widgets = [name for name, section in config.widgets if section.enabled]
    print(
        f"configuration OK: {settings.source} "
        f"({len(widgets)} widgets enabled: {', '.join(widgets) or 'none'}; {len(config.tiles)} tiles)"
    )
    return 0


def _database(action: str, file: str | None) -> int:
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415 - only this command needs the database

    from .storage.database import Database, head_revision  # noqa: PLC0415

    try:
        settings = load_settings(os.environ, file)
    except ConfigError as error:
        print(f"configuration invalid: {error}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
