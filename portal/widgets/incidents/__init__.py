"""The `incidents` widget: every alert of the last 24 hours, firing and resolved, from Prometheus
(its history) and Alertmanager (who silenced what, until when)."""

from __future__ import annotations

from .upstream import ALERTMANAGER, AlertmanagerSection
from .widget import IncidentsSettings, IncidentsWidget

__all__ = ["ALERTMANAGER", "AlertmanagerSection", "IncidentsSettings", "IncidentsWidget"]
