"""The `status` widget: services up / degraded / down / maintenance from Uptime Kuma."""

from __future__ import annotations

from .widget import UPTIME_KUMA, StatusSettings, StatusWidget

__all__ = ["UPTIME_KUMA", "StatusSettings", "StatusWidget"]
