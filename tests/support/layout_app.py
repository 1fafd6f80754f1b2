"""The portal with plain test widgets beside the registry's, for gunicorn: `tests.support.layout_app:app`."""

from __future__ import annotations

from portal import create_app

from .layout_widgets import ALPHA, BETA, GAMMA, STATUS

app = create_app({"WIDGETS": (STATUS, ALPHA, BETA, GAMMA)})  # status and the test cards
