"""The portal with the test-only notes widget, for gunicorn: `tests.support.notes_app:app`."""

from __future__ import annotations

from portal import create_app
from portal.widgets import WIDGETS

from .notes_widget import NotesWidget

app = create_app({"WIDGETS": (*WIDGETS, NotesWidget())})
