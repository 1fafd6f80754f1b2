"""The metrics card: its Prometheus client, and its gauges against a real Prometheus.

The gauges read a metric the test sets on a target the real Prometheus scrapes every second
(tests/support/peer_fixtures.py). The faults a real server does not show on demand (a hang,
garbage, an oversized or dripped answer, HTTP 4xx and 5xx) are in test_monitoring_faults.py.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
import responses
from flask import Flask

from portal import ConfigError, create_app
from portal.state import portal_state
from portal.upstreams.breaker import CircuitState
from portal.upstreams.http import HttpLimits, UpstreamBadResponse, UpstreamRejected
from portal.widgets.metrics.client import MAX_POINTS, PrometheusClient, choose_step, parse_rfc3339

from ..conftest import SECRET
from ..support.metrics_target import ControlledTarget
from ..support.monitoring import card, gauge, gauge_status, monitoring_config
from ..support.processes import free_port, wait_for
from ..support.prometheus import PrometheusServer
from ..support.spoken import announced, shown

BASE = "http://prometheus.test"

# --- the client, against recorded answers of a real Prometheus 2.42 -------------------------------


def _client(**headers: str) -> PrometheusClient:
    return PrometheusClient(requests.Session(), BASE, headers, HttpLimits(timeout=2))


@responses.activate
def test_client_reads_a_vector_with_its_labels(fixture_json: Callable[[str], Any]) -> None:
    responses.get(f"{BASE}/api/v1/query", json=fixture_json("metrics/query-vector.json"))
    samples = _client().query('node_memory_bytes{target="controlled"}')
    assert sorted((s.labels["node"], s.value) for s in samples) == [
        ("k3s-agent-1", 1610612736.0),
        ("k3s-agent-2", 2147483648.0),
    ]
    assert all(s.at > 1.7e9 for s in samples)


@responses.activate
@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("query-scalar.json", lambda v: v == 3.5),
        ("query-nan.json", math.isnan),
        ("query-inf.json", lambda v: v == math.inf),
    ],
)
def test_client_reads_scalars_nan_and_inf(
    fixture_json: Callable[[str], Any], name: str, check: Callable[[float], bool]
) -> None:
    responses.get(f"{BASE}/api/v1/query", json=fixture_json(f"metrics/{name}"))
    (sample,) = _client().query("q")
    assert check(sample.value)


@responses.activate
@pytest.mark.parametrize(
    ("name", "status", "said"),
    [
        ("query-bad-data.json", 400, "Prometheus refused the query: it is not valid PromQL"),
        ("query-execution.json", 422, "Prometheus could not evaluate the query"),
        ("query-range-too-many.json", 400, "Prometheus refused the query: it is not valid PromQL"),
    ],
)
def test_a_refused_query_says_why_in_words_and_logs_prometheus_own_text(
    fixture_json: Callable[[str], Any], name: str, status: int, said: str
) -> None:
    responses.get(f"{BASE}/api/v1/query", json=fixture_json(f"metrics/{name}"), status=status)
    with pytest.raises(UpstreamRejected) as refused:
        _client().query("q")
    assert str(refused.value.reason) == said
    assert fixture_json(f"metrics/{name}")["error"][:60] in refused.value.detail  # for the log only


@responses.activate
def test_client_reads_a_range_and_never_asks_for_more_than_the_point_limit(
    fixture_json: Callable[[str], Any],
) -> None:
    responses.get(f"{BASE}/api/v1/query_range", json=fixture_json("metrics/query-range.json"))
    now = time.time()
    (series,) = _client().query_range("q", now - 86400, now, step=1)
    assert series.points and all(v == 42.5 for _, v in series.points)
    sent = responses.calls[0].request.params
    assert (float(sent["end"]) - float(sent["start"])) / float(sent["step"]) <= MAX_POINTS
    assert choose_step(0, 86400, 1) == 8 and choose_step(0, 3600, 60) == 60 and choose_step(0, 0, 0) == 1


@responses.activate
def test_client_reads_alerts_and_rules(fixture_json: Callable[[str], Any]) -> None:
    responses.get(f"{BASE}/api/v1/alerts", json=fixture_json("metrics/alerts.json"))
    responses.get(f"{BASE}/api/v1/rules", json=fixture_json("metrics/rules.json"))
    alerts = {a.labels["alertname"]: a for a in _client().alerts()}
    critical = alerts["PortalCaptureCritical"]
    assert critical.state == "firing" and critical.value == 42.5
    assert critical.annotations["summary"] == "CPU at 42.5 on controlled"
    assert critical.active_at == pytest.approx(parse_rfc3339("2026-12-01T18:51:29.250300Z"), abs=1)
    (group,) = _client().rules()
    assert group.interval == 1
    rule = next(r for r in group.rules if r.name == "PortalCaptureCritical")
    assert rule.duration == 2 and rule.annotations["summary"] == "CPU at {{ $value }} on {{ $labels.target }}"
    assert rule.query == 'portal_cpu_percent{target="controlled"} > 40'


@responses.activate
def test_client_refuses_a_broken_envelope() -> None:
    responses.get(f"{BASE}/api/v1/query", json={"status": "success", "data": {"resultType": "vector"}})
    with pytest.raises(UpstreamBadResponse):
        _client().query("q")
    responses.get(f"{BASE}/api/v1/alerts", json={"status": "success", "data": {"alerts": [[1, "x"]]}})
    assert _client().alerts() == ()  # an unreadable alert is skipped, not a crash


@responses.activate
def test_credentials_go_in_the_authorization_header(fixture_json: Callable[[str], Any]) -> None:
    responses.get(f"{BASE}/api/v1/query", json=fixture_json("metrics/query-scalar.json"))
    _client(Authorization="Bearer s3cret").query("1")
    assert responses.calls[0].request.headers["Authorization"] == "Bearer s3cret"


def _auth_app(portal_config: dict[str, Any], env: dict[str, str], **section: Any) -> Flask:
    config = monitoring_config(portal_config, "http://127.0.0.1:9")
    config["upstreams"]["prometheus"].update(section)
    return create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET, **env}})


def test_basic_auth_or_a_token_come_from_the_environment(portal_config: dict[str, Any]) -> None:
    app = _auth_app(portal_config, {"PORTAL_PROMETHEUS_PASSWORD": "pw"}, username="portal")
    client: PrometheusClient = portal_state(app).clients["prometheus"]
    assert client._http.headers["Authorization"] == "Basic cG9ydGFsOnB3"  # portal:pw
    app = _auth_app(portal_config, {"PORTAL_PROMETHEUS_TOKEN": "t0ken"})
    assert portal_state(app).clients["prometheus"]._http.headers["Authorization"] == "Bearer t0ken"
    assert (
        "Authorization" not in portal_state(_auth_app(portal_config, {})).clients["prometheus"]._http.headers
    )


@pytest.mark.parametrize(
    ("env", "section", "named"),
    [
        ({}, {"username": "portal"}, "upstreams.prometheus.username: PORTAL_PROMETHEUS_PASSWORD is missing"),
        ({"PORTAL_PROMETHEUS_PASSWORD": "pw"}, {}, "upstreams.prometheus.username: required"),
        (
            {"PORTAL_PROMETHEUS_PASSWORD": "pw", "PORTAL_PROMETHEUS_TOKEN": "t"},
            {},
            "_TOKEN or PORTAL_PROMETHEUS_PASSWORD, not",
        ),
        ({}, {"url": "http://user:pw@127.0.0.1:9"}, "must not carry credentials"),
    ],
)
def test_incomplete_credentials_are_refused_by_name(
    portal_config: dict[str, Any], env: dict[str, str], section: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        _auth_app(portal_config, env, **section)


# --- the card, against the real Prometheus ---------------------------------------------------------


def _gauge(key: str, query: str, **options: Any) -> dict[str, Any]:
    return {"id": key, "label": {"en": key.capitalize(), "fr": f"{key} (fr)"}, "query": query, **options}


@pytest.fixture
def metrics_app(
    portal_config: dict[str, Any], prometheus_with_rules: PrometheusServer
) -> Callable[[list[dict[str, Any]]], Flask]:
    def build(gauges: list[dict[str, Any]], prometheus: str | None = None) -> Flask:
        config = monitoring_config(portal_config, prometheus or prometheus_with_rules.url, gauges=gauges)
        return create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})

    return build


@pytest.fixture
def target(controlled_target: ControlledTarget) -> Iterator[ControlledTarget]:
    names: list[str] = []
    original = controlled_target.set

    def set_and_remember(name: str, value: float, **labels: str) -> None:
        names.append(name)
        original(name, value, **labels)

    controlled_target.set = set_and_remember  # type: ignore[method-assign]
    yield controlled_target
    controlled_target.set = original  # type: ignore[method-assign]
    for name in names:
        controlled_target.clear(name)


def _scraped(prometheus: PrometheusServer, metric: str, value: float) -> None:
    wait_for(
        lambda: prometheus.value(f'{metric}{{target="controlled"}}') == value,
        timeout=15,
        what=f"{metric}={value}",
    )


@pytest.mark.peers
def test_a_gauge_reads_a_real_value_and_crosses_warn_then_critical(
    metrics_app: Callable[..., Flask], target: ControlledTarget, prometheus_with_rules: PrometheusServer
) -> None:
    metric = "portal_test_cpu_percent"
    target.set(metric, 42.0)
    cpu = _gauge(
        "cpu", f'{metric}{{target="controlled"}}', unit="percent", warn=75, critical=90, display="gauge"
    )
    client = metrics_app([cpu]).test_client()
    _scraped(prometheus_with_rules, metric, 42.0)

    html = card(client, "metrics", lambda h: "42.0%" in gauge(h, "cpu"))
    shown = gauge(html, "cpu")
    assert gauge_status(html, "cpu") == "ok" and ">OK</span>" in shown and "#check" in shown
    assert 'class="gauge-dial__value"' in shown  # the dial, drawn on the server
    assert re.search(r'<polyline class="sparkline__line" points="[\d., ]+"', shown)
    assert 'aria-label="Cpu over the last 60 minutes: from ' in shown and "max 42.0%" in shown
    assert "warning ≥ 75.0%" in shown and "critical ≥ 90.0%" in shown
    assert " style=" not in html  # the CSP forbids style attributes: sizes are SVG attributes
    # Its name leads to its graph in Prometheus, over the sparkline's hour: a page Prometheus serves.
    link = re.search(
        r'<a class="gauge__link" href="([^"]+)" rel="noopener" title="Its graph in Prometheus">', shown
    )
    assert link, shown
    query = quote(cpu["query"], safe="")
    expected = f"{prometheus_with_rules.url}/graph?g0.expr={query}&g0.tab=0&g0.range_input=60m"
    assert unescape(link.group(1)) == expected
    assert requests.get(expected, timeout=5).status_code == 200

    target.set(metric, 80.0)
    html = card(client, "metrics", lambda h: gauge_status(h, "cpu") == "warn")
    assert (
        "80.0%" in gauge(html, "cpu")
        and ">Warning</span>" in gauge(html, "cpu")
        and "#alert" in gauge(html, "cpu")
    )

    target.set(metric, 95.5)
    html = card(client, "metrics", lambda h: gauge_status(h, "cpu") == "critical")
    shown = gauge(html, "cpu")
    assert "95.5%" in shown and ">Critical</span>" in shown and "#octagon" in shown
    # Said to screen readers, with the gauge's name (not its value, which moves at every poll).
    assert announced(html) == "Quick metrics: 1 critical (Cpu), 0 warnings"
    french = card(client, "metrics", lambda h: "95,5" in h, language="fr")
    assert "95,5\u00a0%" in gauge(french, "cpu") and "Critique" in gauge(french, "cpu")
    assert announced(french) == "Métriques clés\u00a0: 1 critique (cpu (fr)), 0 avertissement"


@pytest.mark.peers
def test_a_gauge_may_lead_to_the_dashboard_the_configuration_names_and_only_a_plain_one(
    portal_config: dict[str, Any], metrics_app: Callable[..., Flask]
) -> None:
    dashboard = "https://grafana.example.org/d/k3s/cluster?viewPanel=2&orgId=1"
    client = metrics_app([_gauge("cpu", "vector(1)", link=dashboard)]).test_client()
    shown = gauge(card(client, "metrics", lambda h: 'id="gauge-cpu"' in h, language="fr"), "cpu")
    assert f'href="{dashboard.replace("&", "&amp;")}" rel="noopener" title="Son tableau de bord"' in shown, (
        shown
    )
    for refused in ("javascript:alert(1)", "https://user:secret@grafana.example.org/d/k3s"):
        config = monitoring_config(
            portal_config, "http://127.0.0.1:9", gauges=[_gauge("cpu", "vector(1)", link=refused)]
        )
        with pytest.raises(ConfigError, match="gauges"):
            create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})


@pytest.mark.peers
def test_a_gauge_whose_series_went_away_says_its_last_value_and_when(
    portal_config: dict[str, Any], target: ControlledTarget, prometheus_with_rules: PrometheusServer
) -> None:
    """A target gone (a pod deleted, an exporter down): the sparkline still draws its last
    minutes, so the gauge says what it last read and when, not only "no series"."""
    metric = "portal_test_queue_depth"
    target.set(metric, 42.0)
    queue = _gauge("queue", f'{metric}{{target="controlled"}}', decimals=0)
    config = monitoring_config(portal_config, prometheus_with_rules.url, gauges=[queue])
    config["widgets"]["metrics"].update(sparkline_minutes=5, sparkline_points=300)  # a point a second
    app = create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})
    client = app.test_client()
    _scraped(prometheus_with_rules, metric, 42.0)
    card(client, "metrics", lambda h: ">42<" in gauge(h, "queue"))
    time.sleep(3)  # a few points of the sparkline
    target.clear(metric)
    html = card(client, "metrics", lambda h: "No value now" in gauge(h, "queue"))
    said = r"No value now: the last one, 42, was at <time datetime=\"[^\"]+\" title=\"[^\"]+\">"
    assert re.search(said, gauge(html, "queue"))
    assert "no series" not in gauge(html, "queue")


@pytest.mark.peers
def test_a_gauge_whose_lower_values_are_worse_and_bytes_in_each_language(
    metrics_app: Callable[..., Flask],
) -> None:
    gauges = [
        _gauge(
            "free",
            "vector(1610612736)",
            unit="bytes",
            warn=2147483648,
            critical=1073741824,
            direction="below",
        ),
        _gauge("rate", "vector(1536)", unit="bytes_per_second"),
        _gauge("latency", "vector(0.25)", unit="seconds", decimals=0),
        _gauge("uptime", "vector(7500)", unit="seconds"),
    ]
    client = metrics_app(gauges).test_client()
    english = card(client, "metrics", "1.5 GiB")
    assert gauge_status(english, "free") == "warn"  # 1.5 GiB is below the 2 GiB warning
    assert "1.5 KiB/s" in gauge(english, "rate") and "250 ms" in gauge(english, "latency")
    assert "2 hr 5 min" in gauge(english, "uptime")
    french = card(client, "metrics", "Gio", language="fr")
    assert "1,5\u00a0Gio" in gauge(french, "free") and "1,5\u00a0Kio/s" in gauge(french, "rate")
    assert "2\u202fh 5\u00a0min" in gauge(french, "uptime")


@pytest.mark.peers
def test_a_value_never_reads_as_a_threshold_it_has_not_reached(metrics_app: Callable[..., Flask]) -> None:
    """89.96 against a critical 90 read "90.0%" tagged Warning beside "critical ≥ 90.0%"; a
    threshold of 0.5 at no decimals read "≤ 0". Written with the decimals that tell them apart."""
    gauges = [
        _gauge("cpu", "vector(89.96)", unit="percent", warn=75, critical=90),
        _gauge("pods", "vector(0.4)", decimals=0, warn=0.5, direction="below"),
        _gauge("load", "vector(42.04)", unit="percent", warn=75, critical=90),
    ]
    html = card(metrics_app(gauges).test_client(), "metrics", "89.96")
    assert "89.96%" in gauge(html, "cpu") and gauge_status(html, "cpu") == "warn"
    assert "critical ≥ 90.0%" in gauge(html, "cpu")  # a round threshold keeps the gauge's decimals
    assert "warning ≤ 0.5" in gauge(html, "pods") and gauge_status(html, "pods") == "warn"
    assert "42.0%" in gauge(html, "load")  # far from both: the gauge's own decimals


@pytest.mark.peers
def test_each_failure_of_a_query_stays_in_its_own_gauge_and_says_which(
    metrics_app: Callable[..., Flask], target: ControlledTarget, prometheus_with_rules: PrometheusServer
) -> None:
    target.set("portal_test_good", 7)
    target.set("portal_test_two", 1, node="a")
    target.set("portal_test_two", 2, node="b")
    target.set("portal_test_nan", math.nan)
    target.set("portal_test_inf", math.inf)
    gauges = [
        _gauge("good", 'portal_test_good{target="controlled"}', decimals=0),
        _gauge("bad", "sum(rate(portal_test_good[5m])"),
        _gauge("clash", "portal_test_two + on(target) portal_test_two"),
        _gauge("empty", 'portal_test_never_set{target="controlled"}'),
        _gauge("several", 'portal_test_two{target="controlled"}'),
        _gauge("nan", 'portal_test_nan{target="controlled"}'),
        _gauge("inf", 'portal_test_inf{target="controlled"}', sparkline=False),
        # histogram_quantile() answers +Inf for a latency past the last bucket: as bad as it gets
        _gauge("slow", 'portal_test_inf{target="controlled"}', sparkline=False, warn=0.5, critical=2),
        _gauge("floor", '-portal_test_inf{target="controlled"}', warn=0.5, direction="below"),
        _gauge("wrong_side", '-portal_test_inf{target="controlled"}', warn=0.5),
    ]
    app = metrics_app(gauges)
    client = app.test_client()
    _scraped(prometheus_with_rules, "portal_test_good", 7)
    wait_for(
        lambda: len(prometheus_with_rules.query('portal_test_two{target="controlled"}')) == 2,
        what="two series",
    )

    html = card(client, "metrics", lambda h: "NaN" in h and "+Inf" in h and ">7<" in gauge(h, "good"))
    assert gauge_status(html, "good") == "ok"
    assert "Prometheus refused the query: it is not valid PromQL" in gauge(html, "bad")
    assert "Prometheus could not evaluate the query" in gauge(html, "clash")
    assert "No data: the query returned no series." in gauge(html, "empty")
    assert "The query returned 2 series; a gauge needs exactly one." in gauge(html, "several")
    assert "The value is not a number (NaN)." in gauge(html, "nan")
    assert "The value is infinite (+Inf)." in gauge(html, "inf")
    for key in ("bad", "clash", "empty", "several", "nan", "inf", "wrong_side"):
        assert gauge_status(html, key) == "unknown", key
        assert "No value" in gauge(html, key)
    assert gauge_status(html, "slow") == "critical" and "The value is infinite (+Inf)." in gauge(html, "slow")
    assert gauge_status(html, "floor") == "warn" and "The value is infinite (-Inf)." in gauge(html, "floor")
    # The card's announcement names them, and what each gauge without a value is missing.
    assert announced(html).startswith(
        "Quick metrics: 1 critical (Slow), 1 warning (Floor). bad: Prometheus refused the query"
    )
    assert "refused" not in gauge(html, "good") and "stale-banner" not in html  # said where it belongs
    for _ in range(6):  # the refused queries, again and again: Prometheus itself is fine
        time.sleep(0.3)
        card(client, "metrics")
    assert portal_state(app).cache.breaker("prometheus").state is CircuitState.CLOSED
    assert gauge_status(card(client, "metrics"), "good") == "ok"
    page = client.get("/", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and 'id="widget-metrics"' in page.get_data(as_text=True)
    status = client.get("/widgets/status", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "is-ok" in status and "SonarQube" in status  # the rest of the page is untouched


@pytest.mark.peers
def test_prometheus_down_keeps_the_last_values_marked_stale_then_says_so(
    metrics_app: Callable[..., Flask], tmp_path: Path
) -> None:
    own = PrometheusServer(tmp_path).start()
    try:
        app = metrics_app([_gauge("one", "vector(1)"), _gauge("two", "vector(2)")], prometheus=own.url)
        client = app.test_client()
        card(client, "metrics", lambda h: ">1.0<" in gauge(h, "one") and ">2.0<" in gauge(h, "two"))
    finally:
        own.stop()
    html = card(client, "metrics", "cannot be reached")
    assert 'class="widget-content is-stale"' in html
    assert re.fullmatch(
        r"Quick metrics: [^.]*\. Data from [^,]+, Prometheus cannot be reached", announced(html)
    )
    assert shown(html).count("Prometheus cannot be reached") == 1  # said once, not per gauge
    assert re.search(r"Data from <time", html)
    assert ">1.0<" in gauge(html, "one") and 'class="gauge is-unknown is-stale"' not in html
    assert "is-stale" in gauge(html, "one")  # the value is kept, muted

    never = metrics_app([_gauge("one", "vector(1)")], prometheus=f"http://127.0.0.1:{free_port()}")
    html = card(never.test_client(), "metrics", "Data unavailable")
    assert "Prometheus cannot be reached" in html and 'class="widget-content is-error"' in html
