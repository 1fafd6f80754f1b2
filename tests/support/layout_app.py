"""The portal with plain test widgets beside the registry's, for gunicorn: `tests.support.layout_app:app`."""

from __future__ import annotations

from portal import create_app
from portal.widgets import WIDGETS

from .layout_widgets import ALPHA, BETA, GAMMA

app = create_app({"WIDGETS": (*WIDGETS, ALPHA, BETA, GAMMA)})
