"""Alembic's environment: migrations run on the connection `Database.upgrade` holds (and locks).

Create a revision from the models: `alembic -x url=sqlite:///tmp/x.db revision --autogenerate -m ...`
is not wired; write it by hand in versions/ (each names its predecessor), as the two there do.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from portal.storage.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through portal.storage.Database (python -m portal db upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
