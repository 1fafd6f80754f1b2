"""Reading and writing a user's layout in the portal's database (one row per subject)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select

from ..config import PortalConfig
from ..identity import User
from ..storage.database import Database, StorageUnavailable, upsert
from ..storage.models import UserLayout, utcnow
from .model import (
    CHANGED_ELSEWHERE,
    NOTHING_SAVED,
    LayoutDocument,
    LayoutRefused,
    Source,
    default_document,
    layout_basis,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Saved:
    """A saved layout: its revision, the document, and whether it is the page's change put onto
    a layout saved elsewhere since (then the page shows `document` in place of its own)."""

    revision: int
    document: LayoutDocument
    merged: bool


# The page's change put onto the layout saved since its page was drawn (None: none saved).
Rebase = Callable[[LayoutDocument | None], LayoutDocument]


def saved_document(database: Database, subject: str) -> LayoutDocument | None:
    """The user's saved layout, or None (never saved, or reset). StorageUnavailable passes up."""
    with database.session() as session:
        stored = session.execute(select(UserLayout.layout).where(UserLayout.subject == subject)).scalar()
    return _readable(stored)


def _readable(stored: Any) -> LayoutDocument | None:
    if stored is None:
        return None
    try:
        return LayoutDocument.model_validate(stored)
    except ValidationError:
        log.warning(
            "a saved layout is no longer readable: the default applies", extra={"event": "layout_invalid"}
        )
        return None


def load_document(database: Database, config: PortalConfig, user: User) -> tuple[LayoutDocument, Source, str]:
    """The user's layout: saved, else their team's default; the default while the database is
    away. With where it came from, and its basis (`layout_basis`)."""
    try:
        saved = saved_document(database, user.subject)
    except StorageUnavailable:
        return default_document(config, user), "unavailable", NOTHING_SAVED
    if saved is None:
        return default_document(config, user), "default", NOTHING_SAVED
    return saved, "saved", layout_basis(saved)


def save_document(
    database: Database,
    subject: str,
    document: LayoutDocument,
    based_on: str | None = None,
    rebase: Rebase | None = None,
) -> Saved:
    """Replace the user's layout; what was saved. `based_on`: the basis of the
    layout the page was showing. When the saved one is another by now (changed on another device
    or tab, or reset), `rebase` makes the page's change onto it (None for a reset) the layout to
    save; without `rebase`, LayoutRefused (409) and nothing changes. `based_on` None: no check
    (the last save wins).

    A saved layout that is already `document` is no conflict: a page whose save was kept but
    whose answer was lost sends it again, to learn the basis it now follows."""
    merged = False
    # Serialised per user: two saves at once (two tabs, two workers) read and write one at a
    # time, so the second is checked (and merged) against the first, never written over it.
    with database.session(serialised=f"layout:{subject}") as session:
        if based_on is not None:
            current = _readable(
                session.execute(select(UserLayout.layout).where(UserLayout.subject == subject)).scalar()
            )
            if layout_basis(current) not in (based_on, layout_basis(document)):
                if rebase is None:
                    raise LayoutRefused(CHANGED_ELSEWHERE, 409)
                document, merged = rebase(current), True
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
    return Saved(revision, document, merged)


def reset_document(database: Database, subject: str) -> None:
    """Forget the user's layout: their team's default applies again."""
    with database.session() as session:
        session.execute(delete(UserLayout).where(UserLayout.subject == subject))
