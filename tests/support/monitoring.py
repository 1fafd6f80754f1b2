"""Helpers of the metrics and incidents tests: a portal configuration on the real Prometheus and
Alertmanager, a card polled until it says something, and one gauge or alert cut out of it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from flask.testing import FlaskClient


def monitoring_config(
    base: Mapping[str, Any],
    prometheus: str | None,
    alertmanager: str | None = None,
    gauges: list[dict[str, Any]] | None = None,
    **incidents: Any,
) -> dict[str, Any]:
    """`base` with both cards on these servers, fresh for a second (every poll sees a change)."""
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(base)))
    upstreams = config.setdefault("upstreams", {})
    for name, url in (("prometheus", prometheus), ("alertmanager", alertmanager)):
        if url:
            upstreams[name] = {"url": url, "timeout": 3, "breaker_backoff": 1}
        else:
            upstreams.pop(name, None)
    widgets = config.setdefault("widgets", {})
    widgets["metrics"] = {"ttl": 1, "refresh": 5, **({"gauges": gauges} if gauges is not None else {})}
    widgets["incidents"] = {"ttl": 1, "refresh": 5, "history_step": 1, **incidents}
    return config


def card(
    client: FlaskClient,
    slug: str,
    until: str | Callable[[str], bool] = "",
    language: str = "en",
    timeout: float = 20.0,
    query: str = "",
) -> str:
    """The card's body as the browser gets it, polled (past the TTL) until `until` holds."""
    check = until if callable(until) else (lambda html: until in html)
    deadline = time.monotonic() + timeout
    html = ""
    while True:
        response = client.get(f"/widgets/{slug}{query}", headers={"Accept-Language": language})
        assert response.status_code == 200, response.status_code
        html = response.get_data(as_text=True)
        if 'data-poll="soon"' not in html and check(html):
            return html
        if time.monotonic() > deadline:
            raise AssertionError(f"the {slug} card never said what was expected; last answer:\n{html}")
        time.sleep(0.25)


def gauge(html: str, key: str) -> str:
    """One gauge of the metrics card (its <li>)."""
    found = re.search(rf'<li class="gauge [^"]*" id="gauge-{re.escape(key)}">.*?</li>', html, re.S)
    assert found, f"no gauge {key!r} in:\n{html}"
    return found.group(0)


def gauge_status(html: str, key: str) -> str:
    found = re.search(r'<li class="gauge is-(\w+)', gauge(html, key))
    assert found
    return found.group(1)


def alert_row(html: str, alertname: str) -> str | None:
    """The row of an alert in the incidents card, or None (its name may hold word breaks)."""
    for row in re.findall(r'<li class="alert-row .*?</li>\s*(?=<li class="alert-row|</ol>)', html, re.S):
        if f"<bdi>{alertname}</bdi>" in row.replace("<wbr>", ""):
            return str(row)
    return None
