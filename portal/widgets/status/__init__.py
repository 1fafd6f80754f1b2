"""The `status` widget: services up / degraded / down / maintenance from Uptime Kuma."""

from __future__ import annotations

import requests

from ...config import UpstreamSection
from ...upstreams.http import HttpLimits
from .client import UptimeKumaClient
from .views import WIDGET
from .views import bp as blueprint


def make_client(section: UpstreamSection, session: requests.Session) -> UptimeKumaClient:
    """The Uptime Kuma client of this deployment."""
    limits = HttpLimits(section.timeout, section.connect_timeout, section.max_bytes)
    verify: bool | str = str(section.ca_bundle) if section.ca_bundle else section.verify_tls
    return UptimeKumaClient(session, str(section.url), None, limits, verify)


__all__ = ["WIDGET", "blueprint", "make_client"]
