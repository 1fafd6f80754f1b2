"""The portal with two buggy test cards beside the status card, for gunicorn:
`tests.support.failing_app:app`."""

from __future__ import annotations

from portal import create_app

from .failing_widgets import BUGGY, SMUDGED
from .layout_widgets import STATUS

app = create_app({"WIDGETS": (STATUS, BUGGY, SMUDGED)})
