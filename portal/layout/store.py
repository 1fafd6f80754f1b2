"""Reading and writing a user's layout in the portal's database (one row per subject)."""

from __future__ import annotations

import logging

from pydantic import ValidationError
from sqlalchemy import delete, select

from ..config import PortalConfig
from ..identity import User
from ..storage.database import Database, StorageUnavailable, upsert
from ..storage.models import UserLayout, utcnow
from .model import LayoutDocument, Source, default_document

log = logging.getLogger(__name__)


def saved_document(database: Database, subject: str) -> LayoutDocument | None:
    """The user's saved layout, or None (never saved, or reset). StorageUnavailable passes up."""
    with database.session() as session:
        stored = session.execute(select(UserLayout.layout).where(UserLayout.subject == subject)).scalar()
    if stored is None:
        return None
    try:
        return LayoutDocument.model_validate(stored)
    except ValidationError:
        log.warning(
            "a saved layout is no longer readable: the default applies", extra={"event": "layout_invalid"}
        )
        return None


def load_document(database: Database, config: PortalConfig, user: User) -> tuple[LayoutDocument, Source]:
    """The user's layout: saved, else their team's default; the default while the database is away."""
    try:
        saved = saved_document(database, user.subject)
    except StorageUnavailable:
        return default_document(config, user), "unavailable"
    if saved is None:
        return default_document(config, user), "default"
    return saved, "saved"


def save_document(database: Database, subject: str, document: LayoutDocument) -> int:
    """Replace the user's layout in one statement (concurrent saves: the last one wins); its revision."""
    with database.session() as session:
        upsert(
            session,
            UserLayout,
            {
                "subject": subject,
                "layout": document.model_dump(mode="json"),
                "revision": 1,
                "updated_at": utcnow(),
            },
            ("subject",),
            increment="revision",
        )
        revision: int = session.execute(
            select(UserLayout.revision).where(UserLayout.subject == subject)
        ).scalar_one()
    return revision


def reset_document(database: Database, subject: str) -> None:
    """Forget the user's layout: their team's default applies again."""
    with database.session() as session:
        session.execute(delete(UserLayout).where(UserLayout.subject == subject))
