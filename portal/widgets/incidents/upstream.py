"""Alertmanager as an upstream: its section (shaped like Prometheus'), secrets and client."""

from __future__ import annotations

from dataclasses import replace

from ...upstreams.upstream import ClientSetup, Upstream
from ..metrics.upstream import MonitoringSection, monitoring_upstream
from .client import AlertmanagerClient


class AlertmanagerSection(MonitoringSection):
    """upstreams.alertmanager: optional; without it the card shows Prometheus' view alone."""


_READER = monitoring_upstream("alertmanager", "Alertmanager", AlertmanagerClient, AlertmanagerSection)


def _client(setup: ClientSetup) -> AlertmanagerClient:
    """The client, with the shared store where what it read is remembered for a day (memory.py)."""
    client = _READER.make_client(setup)
    client.store = setup.store
    return client


ALERTMANAGER: Upstream[AlertmanagerClient] = replace(_READER, make_client=_client)
