"""The `metrics` widget: configured PromQL gauges with thresholds and a sparkline, from Prometheus.

`PROMETHEUS` (upstream.py) is shared with the incidents widget.
"""

from __future__ import annotations

from .upstream import PROMETHEUS, MonitoringSection, PrometheusSection
from .widget import Gauge, MetricsSettings, MetricsWidget

__all__ = [
    "PROMETHEUS",
    "Gauge",
    "MetricsSettings",
    "MetricsWidget",
    "MonitoringSection",
    "PrometheusSection",
]
