"""Alertmanager as an upstream: its section (shaped like Prometheus'), secrets and client."""

from __future__ import annotations

from ...upstreams.upstream import Upstream
from ..metrics.upstream import MonitoringSection, monitoring_upstream
from .client import AlertmanagerClient


class AlertmanagerSection(MonitoringSection):
    """upstreams.alertmanager: optional; without it the card shows Prometheus' view alone."""


ALERTMANAGER: Upstream[AlertmanagerClient] = monitoring_upstream(
    "alertmanager", "Alertmanager", AlertmanagerClient, AlertmanagerSection
)
