"""The portal's own database: what it keeps of each person (layout, preferences), nothing else.

SQLAlchemy 2 with Alembic migrations (`migrations/`), on SQLite by default (a file in
`database.data_dir`, for one replica) or PostgreSQL (`database.url`, its password from
PORTAL_DATABASE_PASSWORD) for several. `Database` owns the engine; migrations run at start and
through `python -m portal db upgrade`, one process at a time (a PostgreSQL advisory lock, a file
lock beside the SQLite file). The database is never a condition of the widgets: while it cannot
be reached, /readyz says so, cards keep polling and the layout falls back to the default. Features
keep their per-user choices through the typed `Preference` API (`preferences.py`); one that
needs a table of its own adds a model in `models.py` and a migration in `migrations/versions/`.
"""

from __future__ import annotations

from .database import Database, StorageUnavailable
from .preferences import Preference, Preferences, user_preferences
from .presence import last_sign_in, record_sign_in, record_still_here

__all__ = [
    "Database",
    "Preference",
    "Preferences",
    "StorageUnavailable",
    "last_sign_in",
    "record_sign_in",
    "record_still_here",
    "user_preferences",
]
