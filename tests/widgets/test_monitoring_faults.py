"""The metrics and incidents cards under each fault of the simulators (simulators/base.py FAULT_MODES).

Prometheus and Alertmanager are the simulators here (a real server does not hang, drip or
answer garbage on demand): whatever the fault, the card says it in words, shows no address
and no upstream body, answers 200, and the page and the other cards (or the other part of
the incidents card) still show.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from simulators import prometheus as simulated
from simulators.base import FAULT_MODES, SimServer

from ..conftest import SECRET
from ..support.monitoring import alert_row, card, monitoring_config
from ..support.spoken import announced, shown
from ..test_i18n import shown_text

FAULTS = [mode for mode in FAULT_MODES if mode != "none"]
# The alert of the simulator's world that fires all along (and that Alertmanager holds silenced).
ALWAYS_FIRING = "NodeMemoryHighUtilization"


@pytest.fixture
def monitoring() -> Iterator[tuple[SimServer, SimServer]]:
    """The Prometheus and Alertmanager simulators, sharing one world."""
    prometheus, alertmanager, _ = simulated.make_servers()
    prometheus.start()
    alertmanager.start()
    yield prometheus, alertmanager
    prometheus.stop()
    alertmanager.stop()


def _client(portal_config: dict[str, Any], prometheus: SimServer, alertmanager: SimServer) -> FlaskClient:
    """Both cards on the simulators, each upstream given one second a call."""
    gauges = [{"id": "cpu", "label": {"en": "Cpu", "fr": "CPU"}, "query": "node_cpu_seconds_total"}]
    config = monitoring_config(portal_config, prometheus.url, alertmanager.url, gauges=gauges)
    for name in ("prometheus", "alertmanager"):
        config["upstreams"][name]["timeout"] = 1
    app: Flask = create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})
    return app.test_client()


def _faulted(
    portal_config: dict[str, Any], monitoring: tuple[SimServer, SimServer], upstream: str, mode: str
) -> tuple[FlaskClient, str]:
    """A browser of both cards, `upstream` ("Prometheus" or "Alertmanager") in fault `mode`;
    and the words the card is to say."""
    client = _client(portal_config, *monitoring)
    options: dict[str, Any] = {
        "timeout": {"seconds": 4},
        "refused": {"seconds": 4},
        "slow": {"interval": 0.3},
        "oversize": {"size": 6_000_000},  # above Prometheus' max_bytes (5 MB) and Alertmanager's (2 MB)
    }.get(mode, {})
    prometheus, alertmanager = monitoring
    (prometheus if upstream == "Prometheus" else alertmanager).set_fault(mode, **options)
    return client, _words(upstream, mode)


def _words(upstream: str, mode: str) -> str:
    return {
        "timeout": f"{upstream} did not answer within 1 s",
        "error500": f"{upstream} answered HTTP 500",
        "unauthorized": f"{upstream} asks for a login the portal does not have (HTTP 401)",  # none sent
        "forbidden": f"{upstream} asks for a login the portal does not have (HTTP 403)",
        "notfound": f"{upstream} answered HTTP 404 (not found)",
        "garbage": f"{upstream} returned a response that is not valid JSON",
        "oversize": f"{upstream} sent a response larger than",
        "slow": f"{upstream} is too slow",
        "refused": f"{upstream} cannot be reached",
    }[mode]


def _no_address_nor_body(html: str) -> None:
    """What people read or hear names the tool, never an address; the upstream's body stays out."""
    shown = " ".join(shown_text(html))
    assert not re.search(r"https?://|127\.0\.0\.1|/api/v[12]", shown), shown
    assert "<html>" not in html and "Status Page Not Found" not in html and "permission" not in html


def _rest_of_the_page(client: FlaskClient, *others: str) -> None:
    """The dashboard still answers, and so do `others` (cards the fault does not touch)."""
    page = client.get("/", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="widget-metrics"' in html and 'id="widget-incidents"' in html
    for other in others:
        assert 'class="widget-content is-ok"' in card(client, other, timeout=15), other


@pytest.mark.parametrize("mode", FAULTS)
def test_each_prometheus_fault_is_said_on_the_metrics_card_and_the_page_is_fine(
    portal_config: dict[str, Any], monitoring: tuple[SimServer, SimServer], mode: str
) -> None:
    client, said = _faulted(portal_config, monitoring, "Prometheus", mode)

    html = card(client, "metrics", said, timeout=15)

    assert 'class="widget-content is-error"' in html
    assert "Data unavailable" in html
    assert shown(html).count(said) == 1  # said once for the card, not once per gauge
    heard = announced(html)  # and heard, with the tool's words
    assert heard.startswith("Quick metrics: unavailable. Prometheus ") and said in heard
    _no_address_nor_body(html)
    _rest_of_the_page(client, "status")


@pytest.mark.parametrize("mode", FAULTS)
def test_each_alertmanager_fault_is_said_and_prometheus_view_stays(
    portal_config: dict[str, Any], monitoring: tuple[SimServer, SimServer], mode: str
) -> None:
    client, said = _faulted(portal_config, monitoring, "Alertmanager", mode)

    html = card(client, "incidents", lambda h: said in h and alert_row(h, ALWAYS_FIRING) is not None)

    banner = re.search(r'<div class="stale-banner">.*?</div>\s*</div>', html, re.S)
    assert banner and said in banner.group(0), html
    assert "Silences and inhibitions are not shown." in banner.group(0)
    assert "Prometheus" not in banner.group(0)  # Prometheus' part is fine, and not blamed
    assert "is-firing" in (alert_row(html, ALWAYS_FIRING) or "")  # its view of the alerts stays
    assert 'class="alert-list is-stale"' not in html  # and is fresh: not muted
    _no_address_nor_body(html)
    _rest_of_the_page(client, "metrics", "status")


def test_both_upstreams_failing_with_nothing_to_show_each_reason_is_said_once(
    portal_config: dict[str, Any], monitoring: tuple[SimServer, SimServer]
) -> None:
    """A pod started during an outage: the incidents card reads Prometheus twice (the alerts
    firing and their history) and Alertmanager once. Each reason is said once (Prometheus' was
    said twice, word for word)."""
    prometheus, alertmanager = monitoring
    prometheus.set_fault("garbage")
    alertmanager.set_fault("forbidden")
    client = _client(portal_config, prometheus, alertmanager)

    html = card(client, "incidents", _words("Alertmanager", "forbidden"), timeout=15)

    assert 'class="widget-content is-error"' in html
    assert shown(html).count(_words("Prometheus", "garbage")) == 1
    assert shown(html).count(_words("Alertmanager", "forbidden")) == 1
    assert _words("Prometheus", "garbage") in announced(html)
    assert _words("Alertmanager", "forbidden") in announced(html)


def _noisy_day(portal_config: dict[str, Any], resolved: int, storm: int = 0) -> tuple[str, str]:
    """The incidents card of the demo's alerts, `resolved` more that fired and resolved today and
    `storm` more critical ones firing now: what it shows, and what opens on demand."""
    world = simulated.demo_world()
    now = world.clock()
    for number in range(resolved):
        start = now - 3600 * (number + 2)
        world.add_alert(
            simulated.SimAlert(
                f"BatchJobSlow{number:02d}",
                "info",
                {"job": f"batch-{number}"},
                "Lent",
                "",
                "vector(1)",
                spans=[(start, start + 600)],
            )
        )
    for number in range(storm):
        world.add_alert(
            simulated.SimAlert(
                f"NodeDown{number:02d}",
                "critical",
                {"node": f"node-{number}"},
                "Down",
                "",
                "vector(1)",
                spans=[(now - 60 * (number + 1), simulated.INF)],
            )
        )
    prometheus, alertmanager, _ = simulated.make_servers(world)
    prometheus.start()
    alertmanager.start()
    try:
        html = card(
            _client(portal_config, prometheus, alertmanager), "incidents", "BatchJobSlow" if resolved else ""
        )
    finally:
        prometheus.stop()
        alertmanager.stop()
    first, _, rest = html.partition('<details class="more-rows" id="incidents-more">')
    return first, rest


def test_every_firing_alert_shows_and_the_resolved_ones_after_the_eighth_row_open_on_demand(
    portal_config: dict[str, Any],
) -> None:
    """A noisy day (the demo's seven and fifteen more, resolved): the card stays a card; no alert
    someone is paged for is behind the toggle."""
    first, rest = _noisy_day(portal_config, resolved=15)
    rows = first.count('<li class="alert-row') + rest.count('<li class="alert-row')
    live = len(re.findall(r'<li class="alert-row is-\w+ is-firing"', first + rest))  # not is-muted
    assert live <= 10 and rest and first.count('<li class="alert-row') == max(8, live)
    assert not re.search(r'is-firing"', rest.split("</summary>", 1)[1])
    assert f"Show {rows - max(8, live)} more" in rest


def test_in_a_storm_the_ten_most_severe_firing_alerts_show_and_the_rest_open_on_demand(
    portal_config: dict[str, Any],
) -> None:
    """Twelve critical alerts at once, and the demo's: all drawn, a storm made the card metres
    long. Ten show, the most severe and newest first; the others, counted, one click away."""
    first, rest = (part.replace("<wbr>", "") for part in _noisy_day(portal_config, resolved=0, storm=12))
    assert first.count('<li class="alert-row') == 10
    assert first.count('<li class="alert-row is-critical is-firing"') == 10
    assert first.index("<bdi>NodeDown00</bdi>") < first.index("<bdi>NodeDown09</bdi>")  # newest first
    assert "NodeDown1" not in first and "<bdi>NodeDown11</bdi>" in rest


def test_a_gauge_says_when_prometheus_warned_about_its_answer(
    portal_config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """Thanos with a store away answers 200 with `warnings` ("partial response"): the gauge says
    its value may not be complete; the warning's own text (store addresses) goes to the log only.
    A PromQL info of Prometheus before 2.54, in the same list, is no warning."""
    prometheus, alertmanager, world = simulated.make_servers()
    prometheus.start()
    alertmanager.start()
    try:
        client = _client(portal_config, prometheus, alertmanager)
        calm = card(client, "metrics", "Cpu")
        world.warnings = ['PromQL info: metric might not be a counter, name does not end in _total: "x"']
        asked = prometheus.count("/api/v1/query")
        assert "added a warning" not in card(
            client, "metrics", lambda _: prometheus.count("/api/v1/query") > asked
        )
        world.warnings = ["partial response: store 10.42.0.7:10901 unavailable"]
        html = card(client, "metrics", "added a warning")
        assert "Prometheus added a warning to this answer: it may not be complete or exact." in html
        assert "10.42.0.7" not in html and "added a warning" not in calm
        logged = [r for r in caplog.records if getattr(r, "event", "") == "prometheus_warnings"]
        assert logged and "10.42.0.7:10901" in str(logged[-1].warnings)  # type: ignore[attr-defined]
    finally:
        prometheus.stop()
        alertmanager.stop()
