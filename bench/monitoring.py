"""A real Prometheus and Alertmanager for the bench, and the calls Prometheus counted itself.

The metrics and incidents cards read them in every phase; the amplification phase counts the
portal's calls from Prometheus' own `prometheus_http_requests_total` (its `/metrics`, which
counts under its own handler), so the figure is what Prometheus saw, not what the portal says.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.alertmanager import AlertmanagerServer
from tests.support.prometheus import PrometheusServer

# Something for the incidents card to show: one alert always firing, one firing half the time.
RULES = {
    "groups": [
        {
            "name": "bench",
            "interval": "5s",
            "rules": [
                {"alert": "BenchAlwaysFiring", "expr": "vector(1)", "labels": {"severity": "warning"}},
                {
                    "alert": "BenchFlapping",
                    "expr": "vector(time() % 60) < 30",
                    "labels": {"severity": "critical"},
                },
            ],
        }
    ]
}
API = "/api/v1/"


@dataclass
class Monitoring:
    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer

    def api_calls(self) -> dict[str, int]:
        """Prometheus' own count of the requests to each `/api/v1/` handler so far."""
        text = requests.get(f"{self.prometheus.url}/metrics", timeout=10).text
        found: dict[str, int] = {}
        for family in text_string_to_metric_families(text):
            if family.name != "prometheus_http_requests":
                continue
            for sample in family.samples:
                handler = sample.labels.get("handler", "")
                if sample.name.endswith("_total") and handler.startswith(API):
                    found[handler] = found.get(handler, 0) + int(sample.value)
        return found

    def urls(self) -> dict[str, Any]:
        return {"prometheus": self.prometheus.url, "alertmanager": self.alertmanager.url}


def calls_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Requests per handler between two counts (handlers that received none are left out)."""
    return {k: n - before.get(k, 0) for k, n in sorted(after.items()) if n - before.get(k, 0)}


@contextmanager
def monitoring(directory: Path) -> Iterator[Monitoring]:
    """Alertmanager, then Prometheus evaluating RULES every 5 s and sending to it; stopped by PID."""
    with ExitStack() as stack:
        (directory / "alertmanager").mkdir(exist_ok=True)
        (directory / "prometheus").mkdir(exist_ok=True)
        rules = directory / "bench-rules.yml"
        rules.write_text(yaml.safe_dump(RULES), encoding="utf-8")
        alertmanager = AlertmanagerServer(directory / "alertmanager").start()
        stack.callback(alertmanager.stop)
        prometheus = PrometheusServer(
            directory / "prometheus", scrape_interval="5s", rule_files=[rules], alertmanager=alertmanager.url
        ).start()
        stack.callback(prometheus.stop)
        yield Monitoring(prometheus, alertmanager)
