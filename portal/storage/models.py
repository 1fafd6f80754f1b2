"""The tables of the portal's own database. Every change here comes with a migration.

Rows are keyed by the user's Keycloak subject (`sub`), never by a name that can change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names fixed by convention, so that migrations name them the same on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SUBJECT_LENGTH = 255  # Keycloak subjects are UUIDs; other providers' are at most this


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UserLayout(Base):
    """One person's dashboard: card order, hidden, collapsed, widths, pinned tiles, new tab.

    `layout` is the document `portal.layout.model.LayoutDocument` validates; `revision` counts
    the saves (each save replaces the whole document; a save based on an older layout is
    refused, `portal.layout.store.save_document`).
    """

    __tablename__ = "user_layouts"

    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH), primary_key=True)
    layout: Mapped[dict[str, Any]] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserPreference(Base):
    """One choice of one person for one feature: `namespace` (a widget's slug) and `name`.

    `value` is JSON, validated by the `Preference` that declares it (preferences.py).
    """

    __tablename__ = "user_preferences"

    subject: Mapped[str] = mapped_column(String(SUBJECT_LENGTH), primary_key=True)
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # Finding who holds a value (a calendar feed's token) reads one preference's rows.
    __table_args__ = (Index("ix_user_preferences_namespace_name", "namespace", "name"),)
