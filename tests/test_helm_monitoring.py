"""The chart's monitoring objects: the ServiceMonitor, the alerts (promtool's rule unit tests on
series shaped like the portal's exposition) and the Grafana dashboard."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from .support.helm import SCENARIOS, Helm, find, kinds

pytestmark = pytest.mark.peers

Rendered = dict[str, list[dict[str, Any]]]
JOB = 'job="portal-metrics", namespace="portal"'
POD_A = ', pod="a", instance="10.42.0.7:9101"'


def _exposed_names(app: Flask) -> set[str]:
    """Sample names the portal's metric families expose (with or without samples yet)."""
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",), "gauge": ("",)}
    registry = app.extensions["portal_metrics"].registry
    return {family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]}


def _rules(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = find(manifests, "PrometheusRule")["spec"]["groups"][0]["rules"]
    return rules


def rules_file(manifests: list[dict[str, Any]], directory: Path) -> Path:
    """The PrometheusRule's groups as a Prometheus rule file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rules.yaml"
    groups = find(manifests, "PrometheusRule")["spec"]["groups"]
    path.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    return path


def _dashboard(manifests: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The dashboard ConfigMap's one file: its name and the dashboard it holds."""
    data: dict[str, str] = find(manifests, "ConfigMap", "-dashboard")["data"]
    assert len(data) == 1, sorted(data)
    ((name, text),) = data.items()
    board: dict[str, Any] = json.loads(text)
    return name, board


def test_monitoring_objects_use_metrics_the_portal_exposes(rendered: Rendered, app: Flask) -> None:
    manifests = rendered["monitoring"]
    monitor = find(manifests, "ServiceMonitor")
    metrics_service = find(manifests, "Service", "-metrics")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= metrics_service["metadata"]["labels"].items()
    assert find(manifests, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 4
    assert "replicas" not in find(manifests, "Deployment")["spec"]

    dashboard = _dashboard(manifests)[1]
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    expressions += [rule["expr"] for rule in _rules(rendered["k3s"])]  # with Redis: every alert
    exposed = _exposed_names(app)
    used = {name for expr in expressions for name in re.findall(r"\bportal_[a-z_]+\b", expr)}
    assert used and used <= exposed, used - exposed
    assert "portal_cache_fallback_active" in used


def test_monitoring_is_off_unless_asked(rendered: Rendered) -> None:
    assert not {"ServiceMonitor", "PrometheusRule"} & kinds(rendered["minimal"])
    assert "-dashboard" not in str([m["metadata"]["name"] for m in rendered["minimal"]])


def test_the_rules_select_the_service_monitors_series_or_the_admins(helm: Helm, rendered: Rendered) -> None:
    """prometheus-operator names a ServiceMonitor's job after the Service it scrapes."""
    service = find(rendered["monitoring"], "Service", "-metrics")["metadata"]["name"]
    down = _rules(rendered["monitoring"])[0]
    series = f'up{{job="{service}", namespace="portal"}}'
    assert down["expr"] == f"max by (namespace, job) ({series}) == 0 or absent({series})"
    own = helm.manifests(
        SCENARIOS["monitoring"],
        "metrics.serviceMonitor.enabled=false",
        'metrics.prometheusRule.selector=job="tools/portal"',
    )
    assert all('job="tools/portal"' in rule["expr"] for rule in _rules(own))
    assert "ServiceMonitor" not in kinds(own)


def test_the_service_monitor_takes_relabelings(helm: Helm) -> None:
    manifests = helm.manifests(
        SCENARIOS["monitoring"],
        "metrics.serviceMonitor.relabelings[0].targetLabel=cluster",
        "metrics.serviceMonitor.relabelings[0].replacement=k3s-prod",
        "metrics.serviceMonitor.metricRelabelings[0].action=drop",
        "metrics.serviceMonitor.metricRelabelings[0].sourceLabels={__name__}",
        "metrics.serviceMonitor.metricRelabelings[0].regex=portal_upstream_ratelimit_.*",
    )
    (endpoint,) = find(manifests, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["relabelings"] == [{"targetLabel": "cluster", "replacement": "k3s-prod"}]
    assert endpoint["metricRelabelings"][0]["action"] == "drop"


@pytest.mark.parametrize("scenario", ["monitoring", "k3s"])
def test_the_prometheus_rules_pass_promtool(rendered: Rendered, tmp_path: Path, scenario: str) -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules_file(rendered[scenario], tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(_rules(rendered[scenario]))
    assert f"SUCCESS: {count} rules found" in result.stdout
    assert count == {"monitoring": 11, "k3s": 12}[scenario]  # PortalRedisUnreachable with Redis only


def test_additional_rules_join_the_group(helm: Helm, tmp_path: Path) -> None:
    manifests = helm.manifests(
        SCENARIOS["monitoring"],
        "metrics.prometheusRule.additionalRules[0].alert=PortalTooManyReplicas",
        'metrics.prometheusRule.additionalRules[0].expr=count(up{job="portal-metrics"}) > 4',
    )
    assert _rules(manifests)[-1] == {
        "alert": "PortalTooManyReplicas",
        "expr": 'count(up{job="portal-metrics"}) > 4',
    }
    check = subprocess.run(
        ["promtool", "check", "rules", str(rules_file(manifests, tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{JOB}{labels}}}", "values": values}


def _fires(at: str, alert: str, labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    """`alert` firing at `at`, with the release's job and namespace (as every alert keeps them)."""
    expected = {"exp_labels": {"team": "platform", "job": "portal-metrics", "namespace": "portal", **labels}}
    expected["exp_annotations"] = {"summary": summary, "description": description}
    return {"eval_time": at, "alertname": alert, "exp_alerts": [expected]}


def _quiet(at: str, alert: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def _check_alerts(
    manifests: list[dict[str, Any]], directory: Path, series: list[dict[str, str]], alerts: list[Any]
) -> None:
    """The chart's rules (in `manifests`) on one-minute `series`: `alerts` as expected."""
    _promtool_test(
        rules_file(manifests, directory),
        directory,
        [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}],
    )


def _promtool_test(rules: Path, directory: Path, tests: list[dict[str, Any]]) -> None:
    """promtool's rule unit tests of `tests` on the rules file."""
    _promtool_test_files([rules], directory, tests)


def _promtool_test_files(rules: list[Path], directory: Path, tests: list[dict[str, Any]]) -> None:
    """promtool's rule unit tests of `tests` on several rules files at once."""
    suite = {"rule_files": [str(path) for path in rules], "evaluation_interval": "1m", "tests": tests}
    test_file = directory / "alerts-test.yaml"
    test_file.write_text(yaml.safe_dump(suite), encoding="utf-8")
    result = subprocess.run(
        ["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alerts_fire_on_the_conditions_they_describe(helm: Helm, tmp_path: Path) -> None:
    """promtool's rule unit tests, on series shaped like the portal's exposition."""
    manifests = helm.manifests(SCENARIOS["monitoring"], "redis.enabled=true")
    kuma = ', upstream="uptime_kuma"'
    duration = "portal_http_request_duration_seconds_bucket"
    calls = "portal_upstream_request_duration_seconds_count"
    total = "portal_http_request_total"
    warning = {"severity": "warning"}
    gitlab = ', upstream="gitlab"'
    series = [
        _series("up", POD_A, "1 1 1 0x30"),
        _series(calls, kuma + ', outcome="ok"', "0+60x30"),
        _series(calls, kuma + ', outcome="timeout"', "0+30x30"),
        _series(calls, kuma + ', outcome="server_error"', "0+30x30"),
        # 600 requests a minute (10/s), each between 1 s and 3 s: p99 = 1 + 2 x 0.99 = 2.98 s.
        _series(duration, ', path="/", le="1.0"', "0x30"),
        _series(duration, ', path="/", le="3.0"', "0+600x30"),
        _series(duration, ', path="/", le="+Inf"', "0+600x30"),
        _series(duration.removesuffix("_bucket") + "_count", ', path="/"', "0+600x30"),
        # A tenth of the answers are 500s.
        _series(total, ', method="GET", status="200"', "0+540x30"),
        _series(total, ', method="GET", status="500"', "0+60x30"),
        _series("portal_upstream_circuit_state", kuma, "2x30"),
        # Taiga's webhook posts once a minute with a key that does not match.
        _series(duration.removesuffix("_bucket") + "_count", HOOK_REFUSED, "0+1x30"),
        _series("portal_cache_fallback_active", ', pod="a"', "0 0 1x30"),
        # The database answers, then stops answering the readiness probes from minute 3.
        _series("portal_database_up", ', pod="a"', "1 1 1 0x30"),
        # The tasks card's template fails at every poll from minute 3.
        _series("portal_widget_failures_total", ', widget="tasks"', "0 0 0 0+4x30"),
        # GitLab's token has 2,000 requests a minute, 100 of them (5 %) left.
        _series("portal_upstream_ratelimit_limit", gitlab, "2000x30"),
        _series("portal_upstream_ratelimit_remaining", gitlab, "1500 1500 100x30"),
        _series(calls, gitlab + ', outcome="ok"', "0+20x30"),  # the portal calls GitLab all along
        # Two workers of 8 threads: 15 of them busy at each look from minute 3.
        _series("portal_worker_threads", ', pod="a", pid="1"', "8x30"),
        _series("portal_worker_threads", ', pod="a", pid="2"', "8x30"),
        _series("portal_http_requests_in_flight", ', pod="a", pid="1"', "2 2 2 8x30"),
        _series("portal_http_requests_in_flight", ', pod="a", pid="2"', "1 1 1 7x30"),
    ]
    alerts = [
        _quiet("2m", "PortalDown"),
        _fires(
            "20m",
            "PortalDown",
            {"severity": "critical"},
            "The portal is down",
            "No portal pod of portal/portal has answered Prometheus for 5 minutes.",
        ),
        _quiet("20m", "PortalPodDown"),  # the only pod: PortalDown says it, not "the others serve"
        _quiet("10m", "PortalCardFailing"),  # failing since minute 3: not yet 10 minutes
        _fires(
            "20m",
            "PortalCardFailing",
            {**warning, "widget": "tasks"},
            "The tasks card cannot be drawn",
            "The portal could not draw its tasks card 40 times in 10 minutes, for 10 minutes: a fault in "
            "the card's code or template, not in its upstream. People see the card's error with a "
            "reference; the pods' logs hold the traceback (event card_failed). The page still answers "
            "200, so no other alert sees it.",
        ),
        _fires(
            "20m",
            "PortalUpstreamRateLimitLow",
            {**warning, "upstream": "gitlab"},
            "The portal has nearly spent its rate limit at gitlab",
            "Only 5% of the requests gitlab allows its token per window are left (under 0.1 for 10 "
            "minutes): once spent, it answers 429 and the portal's cards from it turn stale. Raise the "
            "token's limit, or the widgets' refresh.",
        ),
        _quiet("10m", "PortalThreadsBusy"),  # busy since minute 3: not yet 10 minutes
        _fires(
            "20m",
            "PortalThreadsBusy",
            warning,
            "The portal's threads are nearly all busy",
            "93.75% of the threads of portal/portal's workers were handling a request, on average over "
            "5 minutes, for 10 minutes (over 0.8): the cards' polls wait for a thread. More replicas "
            "(autoscaling.enabled), or an upstream that answers slowly (PortalUpstreamErrorRatioHigh, "
            "the dashboard's upstream latency).",
        ),
        _fires(
            "20m",
            "PortalHttp5xxRatioHigh",
            warning,
            "The portal answers with errors",
            "10% of the portal's answers were 5xx errors over 10 minutes (over 0.05); "
            "the pods' logs name each error's request id.",
        ),
        _fires(
            "20m",
            "PortalUpstreamErrorRatioHigh",
            {**warning, "upstream": "uptime_kuma"},
            "Calls to uptime_kuma fail",
            "50% of the portal's calls to uptime_kuma failed over 10 minutes; "
            "its cards show stale data or an error.",
        ),
        _fires(
            "20m",
            "PortalLatencyP99High",
            warning,
            "The portal answers slowly",
            "The 99th percentile of the portal's request latency is 2.98s (over 1.5s for 10 minutes).",
        ),
        _fires(
            "20m",
            "PortalUpstreamCircuitOpen",
            {"severity": "info", "upstream": "uptime_kuma"},
            "The portal stopped calling uptime_kuma",
            "The circuit breaker of uptime_kuma has been open for 15 minutes: "
            "the upstream keeps failing and is only retried with backoff.",
        ),
        _quiet("6m", "PortalDatabaseUnreachable"),  # 0 since minute 3: not yet 5 minutes
        _fires(
            "20m",
            "PortalDatabaseUnreachable",
            warning,
            "The portal has lost its database",
            "The portal's database has not answered portal/portal's readiness probes for 5 minutes: "
            "the pods stay ready and the cards work, but everyone sees the team's default layout and "
            "no layout or preference change can be saved.",
        ),
        _quiet("6m", "PortalTaigaWebhookRefused"),  # 3 refused by minute 3: firing from minute 8
        _fires(
            "20m",
            "PortalTaigaWebhookRefused",
            warning,
            "The portal refuses Taiga's webhooks",
            "20 calls to the portal's Taiga webhook (/hooks/taiga) were refused over the last hour "
            "(HTTP 403): the key of the webhook in Taiga is not PORTAL_TAIGA_WEBHOOK_SECRET, or that "
            "secret is not set (the pods' logs say which: taiga_webhook_refused). The Taiga cards "
            "still update, but at their refresh instead of within seconds.",
        ),
        _quiet("5m", "PortalRedisUnreachable"),  # 1 since minute 2: not yet 5 minutes
        _fires(
            "20m",
            "PortalRedisUnreachable",
            warning,
            "The portal has lost Redis",
            "A portal worker of portal/portal has used its in-process store for 5 minutes because Redis "
            "cannot be reached: each worker caches and calls the upstreams on its own, sign-in sessions "
            "last at most auth.oidc.outage_grace seconds more, and a logout reaches the other replicas "
            "only once Redis answers.",
        ),
    ]
    _check_alerts(manifests, tmp_path, series, alerts)


HOOK = ', method="POST", path="/hooks/taiga"'
HOOK_REFUSED = HOOK + ', status="403"'


def test_a_refused_webhook_among_accepted_ones_or_a_stray_one_is_no_alert(
    rendered: Rendered, tmp_path: Path
) -> None:
    """A request to the webhook that is not Taiga's, among Taiga's accepted ones, or two strays
    in an hour: Taiga's key is right, no alert."""
    count = "portal_http_request_duration_seconds_count"
    among = [_series(count, HOOK_REFUSED, "0+1x90"), _series(count, HOOK + ', status="204"', "0+2x90")]
    strays = [_series(count, HOOK_REFUSED, "0 1 2x90")]
    for series in (among, strays):
        quiet = [_quiet(at, "PortalTaigaWebhookRefused") for at in ("30m", "80m")]
        _check_alerts(rendered["monitoring"], tmp_path, series, quiet)


def test_one_pod_down_of_two_is_a_warning_and_two_releases_are_two_alerts(helm: Helm, tmp_path: Path) -> None:
    """Production (release portal) loses one pod of two, staging (portal-staging) its only one.
    Each release's rules see their own series; each alert keeps its release's job and namespace,
    so Alertmanager keeps them apart (the same labels would be one alert, silenced as one)."""
    production = rules_file(helm.manifests(SCENARIOS["monitoring"]), tmp_path / "production")
    staging_manifests = helm.manifests(SCENARIOS["monitoring"], "fullnameOverride=portal-staging")
    staging = rules_file(staging_manifests, tmp_path / "staging")
    staging_job = 'job="portal-staging-metrics", namespace="portal"'
    series = [
        _series("up", POD_A, "1 1 0x30"),
        _series("up", ', pod="b", instance="10.42.0.8:9101"', "1x30"),
        {"series": f'up{{{staging_job}, pod="c", instance="10.42.1.9:9101"}}', "values": "1 1 0x30"},
    ]
    platform = {"team": "platform", "namespace": "portal"}
    pod_down = (
        "The portal pod {pod} ({instance}) of portal/{release} has not answered Prometheus for 10 "
        "minutes: the other pods serve its people, with less room to spare."
    )
    alerts = [
        {
            "eval_time": "20m",
            "alertname": "PortalDown",
            "exp_alerts": [
                {
                    "exp_labels": {**platform, "severity": "critical", "job": "portal-staging-metrics"},
                    "exp_annotations": {
                        "summary": "The portal is down",
                        "description": "No portal pod of portal/portal-staging has answered Prometheus "
                        "for 5 minutes.",
                    },
                }
            ],
        },
        {
            "eval_time": "20m",
            "alertname": "PortalPodDown",
            "exp_alerts": [
                {
                    "exp_labels": {
                        **platform,
                        "severity": "warning",
                        "job": job,
                        "pod": pod,
                        "instance": instance,
                    },
                    "exp_annotations": {
                        "summary": "A portal pod does not answer",
                        "description": pod_down.format(pod=pod, instance=instance, release=release),
                    },
                }
                # Not staging's only pod: none serves its people (PortalDown).
                for job, pod, instance, release in (("portal-metrics", "a", "10.42.0.7:9101", "portal"),)
            ],
        },
    ]
    _promtool_test_files(
        [production, staging],
        tmp_path,
        [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}],
    )


def test_a_low_rate_limit_read_before_a_quiet_night_is_no_alert(rendered: Rendered, tmp_path: Path) -> None:
    """The last figure GitLab gave stays in the gauge while nobody polls: the window it spoke of
    has long reset. Only a figure the portal's recent calls read counts."""
    gitlab = ', upstream="gitlab"'
    calls = "portal_upstream_request_duration_seconds_count"
    series = [
        _series("portal_upstream_ratelimit_limit", gitlab, "2000x60"),
        _series("portal_upstream_ratelimit_remaining", gitlab, "100x60"),
        _series(calls, gitlab + ', outcome="ok"', "0+20x5 100x55"),  # the last call at minute 5
    ]
    alerts = [_quiet("40m", "PortalUpstreamRateLimitLow"), _quiet("60m", "PortalUpstreamRateLimitLow")]
    _check_alerts(rendered["monitoring"], tmp_path, series, alerts)


def test_latency_and_errors_stay_quiet_on_a_trickle_of_requests(rendered: Rendered, tmp_path: Path) -> None:
    """Below minRequestRate (0.1/s) one slow or failed request is no percentile: no alert."""
    duration = "portal_http_request_duration_seconds_bucket"
    total = "portal_http_request_total"
    series = [
        _series("up", ', pod="a"', "1x30"),
        # 3 requests a minute (0.05/s), all slow and all failing.
        _series(duration, ', path="/", le="1.0"', "0x30"),
        _series(duration, ', path="/", le="+Inf"', "0+3x30"),
        _series(duration.removesuffix("_bucket") + "_count", ', path="/"', "0+3x30"),
        _series(total, ', method="GET", status="500"', "0+3x30"),
    ]
    alerts = [_quiet("25m", "PortalLatencyP99High"), _quiet("25m", "PortalHttp5xxRatioHigh")]
    _check_alerts(rendered["monitoring"], tmp_path, series, alerts)


def test_no_alert_for_requests_under_the_threshold_nor_for_peoples_conflicts(
    rendered: Rendered, tmp_path: Path
) -> None:
    """Two per cent of the requests take 1.1 s, none over 1.5 s: with a bucket at 1.5 s no p99 is
    guessed above it. Most of an upstream's "failed" calls are conflicts (two people changing one
    task) or refusals: the people's doing, not the upstream failing."""
    duration = "portal_http_request_duration_seconds_bucket"
    calls = "portal_upstream_request_duration_seconds_count"
    taiga = ', upstream="taiga"'
    series = [
        _series("up", ', pod="a"', "1x30"),
        # 600 requests a minute: 588 within 0.1 s, 12 (2 %) between 1 s and 1.5 s.
        _series(duration, ', path="/", le="0.1"', "0+588x30"),
        _series(duration, ', path="/", le="1.0"', "0+588x30"),
        _series(duration, ', path="/", le="1.5"', "0+600x30"),
        _series(duration, ', path="/", le="2.5"', "0+600x30"),
        _series(duration, ', path="/", le="+Inf"', "0+600x30"),
        _series(duration.removesuffix("_bucket") + "_count", ', path="/"', "0+600x30"),
        _series(calls, taiga + ', outcome="ok"', "0+10x30"),
        _series(calls, taiga + ', outcome="conflict"', "0+20x30"),
        _series(calls, taiga + ', outcome="rejected"', "0+5x30"),
    ]
    alerts = [_quiet("25m", "PortalLatencyP99High"), _quiet("25m", "PortalUpstreamErrorRatioHigh")]
    _check_alerts(rendered["monitoring"], tmp_path, series, alerts)


def test_each_release_has_its_own_dashboard(helm: Helm, rendered: Rendered) -> None:
    our_file, ours = _dashboard(rendered["monitoring"])
    other_file, other = _dashboard(helm.manifests(SCENARIOS["monitoring"], "fullnameOverride=portal-staging"))
    again_file, again = _dashboard(helm.manifests(SCENARIOS["monitoring"]))
    # Grafana's sidecar writes every dashboard ConfigMap's files into one folder: a shared file
    # name would make the last release written replace the other's dashboard.
    assert our_file == "portal-portal.json" and other_file == "portal-portal-staging.json"
    assert our_file == again_file
    assert ours["uid"] != other["uid"] and ours["uid"] == again["uid"]
    assert len(ours["uid"]) <= 40  # Grafana's limit
    assert ours["title"] == "DevSecOps portal (portal/portal)"
    assert other["title"] == "DevSecOps portal (portal/portal-staging)"
    variables = {v["name"]: v.get("current") for v in ours["templating"]["list"]}
    assert variables["namespace"] == {"text": "portal", "value": "portal"}
    assert variables["job"] == {"text": "portal-metrics", "value": "portal-metrics"}
