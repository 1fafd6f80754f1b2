"""The Helm chart: `make helm-lint` (strict lint, every scenario validated for Kubernetes 1.30),
and what an admin and an SRE rely on in the rendered manifests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from portal.config import validate_config

from .support.helm import CHART, SCENARIOS, Helm, find
from .support.image import read_stages
from .support.processes import ROOT

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def helm() -> Helm:
    return Helm()


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[str, list[dict[str, Any]]]:
    """Every scenario's manifests, rendered once."""
    return {name: helm.manifests(values) for name, values in SCENARIOS.items()}


def test_make_helm_lint_passes_for_every_scenario() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "helm-lint.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "KUBERNETES_VALIDATE": str(Path(sys.executable).parent / "kubernetes-validate")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(SCENARIOS) >= {
        "default",
        "redis",
        "ingress-tls",
        "existing-secret",
        "monitoring",
        "postgresql",
    }
    assert f"{len(SCENARIOS)} scenarios linted and valid for Kubernetes 1.30.0" in result.stdout


def test_the_deployment_is_hardened_probed_and_rolls_on_config_change(
    helm: Helm, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    deployment = find(rendered["default"], "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1  # SQLite by default: one pod, replaced rather than rolled
    assert spec["strategy"] == {"type": "Recreate"}
    several = find(rendered["postgresql"], "Deployment")["spec"]
    assert several["replicas"] == 2
    assert several["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532  # the image's USER (tests/test_image.py)
    assert pod["securityContext"]["runAsGroup"] == pod["securityContext"]["fsGroup"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8000, "metrics": 9100}

    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["/tmp"] == "tmp" and "emptyDir" in volumes["tmp"]
    assert volumes[mounts[env["PROMETHEUS_MULTIPROC_DIR"]]]["emptyDir"]["medium"] == "Memory"
    assert env["PORTAL_CONFIG"] == "/etc/portal/portal.yaml" and mounts["/etc/portal"] == "config"
    assert env["PORTAL_METRICS_BIND"] == "0.0.0.0:9100"
    assert container["envFrom"] == [{"secretRef": {"name": "portal"}}]

    annotations = spec["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])
    changed = find(helm.manifests(None, "config.portal.title=Another title"), "Deployment")
    assert (
        changed["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        != annotations["checksum/config"]
    )
    # The secret's checksum follows the values (a generated key is random on every render).
    again = find(helm.manifests(), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert again["checksum/secret"] == annotations["checksum/secret"]
    rotated = find(
        helm.manifests(None, "secrets.env.PORTAL_SECRET_KEY=another-key-0123456789abcdef"), "Deployment"
    )
    assert (
        rotated["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]
        != annotations["checksum/secret"]
    )


def test_every_scenarios_pods_fit_the_image_on_either_base(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """The image's user, configuration path and writable paths are the pod's (both bases share them)."""
    _, runtime = read_stages(ROOT / "Dockerfile")
    uid, gid = map(int, runtime.all("USER")[-1].split(":"))
    image_env = runtime.env
    for name, manifests in rendered.items():
        pod = find(manifests, "Deployment")["spec"]["template"]["spec"]
        security = pod["securityContext"]
        assert (security["runAsUser"], security["runAsGroup"], security["fsGroup"]) == (uid, gid, gid), name
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["PORTAL_CONFIG"] == image_env["PORTAL_CONFIG"], name
        assert env["PROMETHEUS_MULTIPROC_DIR"] == image_env["PROMETHEUS_MULTIPROC_DIR"], name
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        assert "configMap" in mounts[str(Path(image_env["PORTAL_CONFIG"]).parent)], name
        # Everything the image writes (HOME, temporary files, metric samples) is on an emptyDir.
        for writable in (image_env["HOME"], "/tmp", image_env["PROMETHEUS_MULTIPROC_DIR"]):
            assert "emptyDir" in mounts[writable], (name, writable)


def test_the_network_policy_admits_traefik_and_prometheus_and_lets_out_dns_and_upstreams(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    policy = find(rendered["redis"], "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "portal"
    traefik, prometheus = policy["ingress"]
    assert traefik["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "traefik"}
    assert traefik["ports"] == [{"protocol": "TCP", "port": "http"}]
    assert prometheus["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert prometheus["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    dns, upstreams = policy["egress"]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}
    # The Uptime Kuma URL (https: 443), the Redis URL's port (6380), Keycloak's (443) and
    # PostgreSQL's (no port in database.url: 5432).
    assert sorted(p["port"] for p in upstreams["ports"]) == [443, 5432, 6380]
    default = find(rendered["default"], "NetworkPolicy")["spec"]["egress"][1]
    assert [p["port"] for p in default["ports"]] == [443]


def test_the_ingress_uses_traefik_and_tls_and_never_reaches_the_metrics_port(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    assert not [m for m in rendered["default"] if m["kind"] == "Ingress"]
    ingress = find(rendered["ingress-tls"], "Ingress")["spec"]
    assert ingress["ingressClassName"] == "traefik"
    assert ingress["tls"] == [{"hosts": ["portal.example.org"], "secretName": "portal-example-org-tls"}]
    (path,) = ingress["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "portal", "port": {"name": "http"}}
    service = find(rendered["ingress-tls"], "Service", "portal")
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
    metrics = find(rendered["ingress-tls"], "Service", "-metrics")
    assert [p["name"] for p in metrics["spec"]["ports"]] == ["metrics"]


def test_the_config_map_is_a_valid_portal_yaml_and_never_demo(
    helm: Helm, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    for name in ("default", "redis", "k3s"):
        config = yaml.safe_load(find(rendered[name], "ConfigMap")["data"]["portal.yaml"])
        assert config["auth"]["mode"] != "demo"
        validate_config(config, name)
    redis = yaml.safe_load(find(rendered["redis"], "ConfigMap")["data"]["portal.yaml"])
    assert redis["cache"]["redis_url"] == "redis://redis-master.redis.svc.cluster.local:6380/0"

    refused = helm.run("template", "portal", str(CHART), "--set", "config.auth.mode=demo")
    assert refused.returncode != 0 and "allowDemoAuth" in refused.stderr
    assert helm.manifests(None, "config.auth.mode=demo", "allowDemoAuth=true")


def test_secrets_come_from_the_chart_or_an_existing_secret(rendered: dict[str, list[dict[str, Any]]]) -> None:
    secret = find(rendered["redis"], "Secret")
    assert set(secret["data"]) == {"PORTAL_SECRET_KEY", "PORTAL_REDIS_PASSWORD"}  # empty keys left out
    generated = find(rendered["default"], "Secret")["data"]["PORTAL_SECRET_KEY"]
    assert len(generated) >= 48

    existing = rendered["existing-secret"]
    assert not [m for m in existing if m["kind"] == "Secret"]
    pod = find(existing, "Deployment")["spec"]["template"]
    assert pod["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "portal-secrets"}}]
    assert "checksum/secret" not in pod["metadata"]["annotations"]


def test_the_taiga_service_account_goes_in_the_secret_and_its_port_out(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    assert set(find(rendered["taiga"], "Secret")["data"]) == {
        "PORTAL_SECRET_KEY",
        "PORTAL_TAIGA_USERNAME",
        "PORTAL_TAIGA_PASSWORD",
        "PORTAL_TAIGA_WEBHOOK_SECRET",
    }
    config = yaml.safe_load(find(rendered["taiga"], "ConfigMap")["data"]["portal.yaml"])
    assert "password" not in str(config).lower()  # the service account is never in the ConfigMap
    validate_config(config, "taiga")
    egress = find(rendered["taiga"], "NetworkPolicy")["spec"]["egress"][1]
    assert 9443 in [p["port"] for p in egress["ports"]]  # Taiga's port


def test_the_database_is_sqlite_on_a_volume_or_postgresql_for_several_replicas(
    helm: Helm, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    default = rendered["default"]
    claim = find(default, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "portal-data"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # layouts outlive uninstall
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod = find(default, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert volumes[mounts["/var/lib/portal"]]["persistentVolumeClaim"] == {"claimName": "portal-data"}
    config = yaml.safe_load(find(default, "ConfigMap")["data"]["portal.yaml"])
    assert config["database"] == {"data_dir": "/var/lib/portal"}

    # More than one pod on SQLite is refused by the values schema; PostgreSQL takes them.
    for refused in ("replicaCount=2", "autoscaling.enabled=true"):
        result = helm.run("template", "portal", str(CHART), "--set", refused)
        assert result.returncode != 0, refused
        assert refused.split(".")[0].split("=")[0] in result.stderr
    password_in_url = helm.run(
        "template", "portal", str(CHART), "--set", "database.url=postgresql+psycopg://portal:pw@db/portal"
    )
    assert password_in_url.returncode != 0 and "database.url" in password_in_url.stderr

    postgresql = rendered["postgresql"]
    assert not [m for m in postgresql if m["kind"] == "PersistentVolumeClaim"]
    config = yaml.safe_load(find(postgresql, "ConfigMap")["data"]["portal.yaml"])
    assert config["database"] == {
        "url": "postgresql+psycopg://portal@postgresql.databases.svc.cluster.local:5432/portal"
    }
    validate_config(config, "postgresql")
    assert set(find(postgresql, "Secret")["data"]) == {"PORTAL_SECRET_KEY", "PORTAL_DATABASE_PASSWORD"}
    egress = find(postgresql, "NetworkPolicy")["spec"]["egress"][1]
    assert 5432 in [p["port"] for p in egress["ports"]]
    pod = find(postgresql, "Deployment")["spec"]["template"]["spec"]
    assert "data" not in {v["name"] for v in pod["volumes"]}

    trial = helm.manifests(None, "database.sqlite.persistence.enabled=false")
    assert not [m for m in trial if m["kind"] == "PersistentVolumeClaim"]
    data = {v["name"]: v for v in find(trial, "Deployment")["spec"]["template"]["spec"]["volumes"]}["data"]
    assert "emptyDir" in data
    theirs = helm.manifests(None, "database.sqlite.persistence.existingClaim=portal-layouts")
    assert not [m for m in theirs if m["kind"] == "PersistentVolumeClaim"]
    data = {v["name"]: v for v in find(theirs, "Deployment")["spec"]["template"]["spec"]["volumes"]}["data"]
    assert data["persistentVolumeClaim"] == {"claimName": "portal-layouts"}


def test_the_gitlab_token_goes_in_the_secret_and_its_port_out(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    assert set(find(rendered["gitlab"], "Secret")["data"]) == {"PORTAL_SECRET_KEY", "PORTAL_GITLAB_TOKEN"}
    config = yaml.safe_load(find(rendered["gitlab"], "ConfigMap")["data"]["portal.yaml"])
    assert "token" not in str(config["upstreams"]["gitlab"])  # the token is never in the ConfigMap
    validate_config(config, "gitlab")
    egress = find(rendered["gitlab"], "NetworkPolicy")["spec"]["egress"][1]
    assert sorted(p["port"] for p in egress["ports"]) == [443, 8443]  # Keycloak's, GitLab's


def test_the_values_schema_refuses_unknown_keys(helm: Helm) -> None:
    result = helm.run("template", "portal", str(CHART), "--set", "replicas=3")
    assert result.returncode != 0 and "replicas" in result.stderr


def test_the_service_account_has_no_token_and_the_pdb_keeps_one_pod(
    helm: Helm, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    assert find(rendered["default"], "ServiceAccount")["automountServiceAccountToken"] is False
    assert find(rendered["postgresql"], "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    single = rendered["default"]  # one replica
    assert not [m for m in single if m["kind"] == "PodDisruptionBudget"]  # it would block node drains


# --- monitoring -----------------------------------------------------------------------------


def _exposed_names(app: Flask) -> set[str]:
    """Sample names the portal's metric families expose (with or without samples yet)."""
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",), "gauge": ("",)}
    registry = app.extensions["portal_metrics"].registry
    return {family.name + suffix for family in registry.collect() for suffix in suffixes[family.type]}


def test_monitoring_objects_use_metrics_the_portal_exposes(
    rendered: dict[str, list[dict[str, Any]]], app: Flask
) -> None:
    manifests = rendered["monitoring"]
    monitor = find(manifests, "ServiceMonitor")
    metrics_service = find(manifests, "Service", "-metrics")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= metrics_service["metadata"]["labels"].items()
    assert find(manifests, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 4
    assert "replicas" not in find(manifests, "Deployment")["spec"]

    dashboard_map = find(manifests, "ConfigMap", "-dashboard")
    assert dashboard_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(dashboard_map["data"]["devsecops-portal.json"])
    expressions = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = find(manifests, "PrometheusRule")["spec"]["groups"][0]["rules"]
    expressions += [rule["expr"] for rule in rules]

    exposed = _exposed_names(app)
    used = {name for expr in expressions for name in re.findall(r"\bportal_[a-z_]+\b", expr)}
    assert used and used <= exposed, used - exposed


def _rules_file(manifests: list[dict[str, Any]], directory: Path) -> Path:
    path = directory / "rules.yaml"
    groups = find(manifests, "PrometheusRule")["spec"]["groups"]
    path.write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    return path


def test_the_prometheus_rules_pass_promtool(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    rules = _rules_file(rendered["monitoring"], tmp_path)
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


JOB = 'job="portal-metrics", namespace="portal"'


def _series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{JOB}{labels}}}", "values": values}


def _fires(at: str, alert: str, labels: dict[str, str], summary: str, description: str) -> dict[str, Any]:
    expected = {"exp_labels": {"team": "platform", **labels}}
    expected["exp_annotations"] = {"summary": summary, "description": description}
    return {"eval_time": at, "alertname": alert, "exp_alerts": [expected]}


def test_the_alerts_fire_on_the_conditions_they_describe(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """promtool's rule unit tests, on series shaped like the portal's exposition."""
    kuma = ', upstream="uptime_kuma"'
    duration = "portal_http_request_duration_seconds_bucket"
    calls = "portal_upstream_request_duration_seconds_count"
    warning = {"severity": "warning"}
    series = [
        _series("up", ', pod="a"', "1 1 1 0x30"),
        _series(calls, kuma + ', outcome="ok"', "0+60x30"),
        _series(calls, kuma + ', outcome="unavailable"', "0+60x30"),
        # Every request takes between 1 s and 3 s: p99 = 1 + 2 x 0.99 = 2.98 s.
        _series(duration, ', path="/", le="1.0"', "0x30"),
        _series(duration, ', path="/", le="3.0"', "0+600x30"),
        _series(duration, ', path="/", le="+Inf"', "0+600x30"),
        _series("portal_upstream_circuit_state", kuma, "2x30"),
    ]
    alerts = [
        {"eval_time": "2m", "alertname": "PortalDown", "exp_alerts": []},
        _fires(
            "20m",
            "PortalDown",
            {"severity": "critical"},
            "The portal is down",
            "No portal pod of portal/portal has answered Prometheus for 5 minutes.",
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
    ]
    suite = {
        "rule_files": [str(_rules_file(rendered["monitoring"], tmp_path))],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}],
    }
    test_file = tmp_path / "alerts-test.yaml"
    test_file.write_text(yaml.safe_dump(suite), encoding="utf-8")
    result = subprocess.run(
        ["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_values_file_is_the_rendered_scenario() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    after = readme.split("with a `portal-values.yaml` like this one", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", after, re.S)
    assert block is not None
    assert yaml.safe_load(block.group(1)) == yaml.safe_load(SCENARIOS["k3s"].read_text(encoding="utf-8"))


def test_keycloak_is_reachable_and_sessions_stay_on_one_replica_without_redis(
    helm: Helm, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    """Sign-in sessions live in each replica unless Redis is shared: Traefik keeps a browser on one."""
    plain = find(rendered["postgresql"], "Service", "portal")["metadata"].get("annotations", {})
    assert plain["traefik.ingress.kubernetes.io/service.sticky.cookie"] == "true"
    shared = find(rendered["redis"], "Service", "portal")["metadata"].get("annotations", {})
    assert "traefik.ingress.kubernetes.io/service.sticky.cookie" not in shared
    single = find(helm.manifests(None, "replicaCount=1"), "Service", "portal")["metadata"]
    assert "annotations" not in single

    keycloak_on_8443 = helm.manifests(None, "config.auth.oidc.server_url=https://sso.internal:8443/")
    egress = find(keycloak_on_8443, "NetworkPolicy")["spec"]["egress"][1]
    assert sorted(p["port"] for p in egress["ports"]) == [8443]

    config = yaml.safe_load(find(rendered["ingress-tls"], "ConfigMap")["data"]["portal.yaml"])
    assert config["auth"]["oidc"]["public_url"] == "https://portal.example.org"
