"""The Helm chart: `make helm-lint` (strict lint, every scenario validated for Kubernetes 1.30),
and what an admin relies on in the rendered manifests. The network policy, the monitoring
objects, the refusals and the per-scenario checks have files of their own (tests/test_helm_*.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask

from .support.helm import CHART, SCENARIOS, Helm, find, kinds, notes, portal_container, portal_yaml, subchart
from .support.image import read_stages
from .support.processes import ROOT

pytestmark = pytest.mark.peers

Rendered = dict[str, list[dict[str, Any]]]


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
        "minimal",  # the defaults and the Keycloak client's secret
        "redis",  # two replicas on PostgreSQL and Redis
        "postgresql",
        "k3s",
        "ingress-tls",
        "existing-secret",
        "ca-bundle",
        "monitoring",
        "keycloak-service",
    }
    assert "== default values (refused)" in result.stdout
    assert "== subchart of tests/fixtures/helm/parent (global)" in result.stdout
    summary = f"defaults refused; {len(SCENARIOS) + 1} scenarios linted and valid for Kubernetes 1.30.0"
    assert summary in result.stdout


def test_the_deployment_is_hardened_probed_and_rolls_on_config_change(helm: Helm, rendered: Rendered) -> None:
    deployment = find(rendered["minimal"], "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1  # SQLite by default: one pod, replaced rather than rolled
    assert spec["strategy"] == {"type": "Recreate"}
    assert spec["revisionHistoryLimit"] == 5
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
    minimal = SCENARIOS["minimal"]
    changed = find(helm.manifests(minimal, "config.portal.title=Another title"), "Deployment")
    assert (
        changed["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        != annotations["checksum/config"]
    )
    # The secret's checksum follows the values (a generated key is random on every render).
    again = find(helm.manifests(minimal), "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert again["checksum/secret"] == annotations["checksum/secret"]
    rotated = find(
        helm.manifests(minimal, "secrets.env.PORTAL_SECRET_KEY=another-key-0123456789abcdef"), "Deployment"
    )
    assert (
        rotated["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]
        != annotations["checksum/secret"]
    )
    # Not a bare hash of the values: who may read pods (no Secrets) cannot test guesses with SHA-256.
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["secrets"]["env"]
    secrets = {**defaults, **yaml.safe_load(minimal.read_text())["secrets"]["env"]}  # as Helm merges them
    compact = json.dumps(secrets, sort_keys=True, separators=(",", ":"))
    assert annotations["checksum/secret"] != hashlib.sha256(compact.encode()).hexdigest()


def test_every_scenarios_pods_fit_the_image_on_either_base(rendered: Rendered) -> None:
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


def test_the_pause_before_stopping_needs_no_program_the_hardened_image_lacks(rendered: Rendered) -> None:
    """The hardened base has no `sleep` (no coreutils): the image's own Python sleeps. A failed
    hook would stop the pod at once, while Traefik still sends it requests."""
    for name, manifests in rendered.items():
        (container,) = find(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "python", name  # /opt/venv/bin/python, first on the image's PATH
    _, runtime = read_stages(ROOT / "Dockerfile")
    assert runtime.env["PATH"].startswith("/opt/venv/bin:")
    started = time.monotonic()
    subprocess.run([sys.executable, *command[1:]], check=True, timeout=30)
    assert time.monotonic() - started >= 5


def test_the_ingress_uses_traefik_and_tls_and_never_reaches_the_metrics_port(
    helm: Helm, rendered: Rendered
) -> None:
    assert "Ingress" not in kinds(rendered["minimal"])
    ingress = find(rendered["ingress-tls"], "Ingress")
    assert (
        ingress["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.entrypoints"] == "websecure"
    )
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "traefik"
    assert spec["tls"] == [{"hosts": ["portal.example.org"], "secretName": "portal-example-org-tls"}]
    (path,) = spec["rules"][0]["http"]["paths"]
    assert path["pathType"] == "Prefix"
    assert path["backend"]["service"] == {"name": "portal", "port": {"name": "http"}}
    service = find(rendered["ingress-tls"], "Service", "portal")
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
    metrics = find(rendered["ingress-tls"], "Service", "-metrics")
    assert [p["name"] for p in metrics["spec"]["ports"]] == ["metrics"]
    assert "cert-manager.io/cluster-issuer" in find(rendered["k3s"], "Ingress")["metadata"]["annotations"]

    aliases = find(
        helm.manifests(
            SCENARIOS["ingress-tls"],
            "ingress.pathType=ImplementationSpecific",
            "ingress.extraHosts={portal.corp.internal}",
            "ingress.extraTls[0].hosts={portal.corp.internal}",
            "ingress.extraTls[0].secretName=corp-tls",
        ),
        "Ingress",
    )["spec"]
    assert [r["host"] for r in aliases["rules"]] == ["portal.example.org", "portal.corp.internal"]
    assert {r["http"]["paths"][0]["pathType"] for r in aliases["rules"]} == {"ImplementationSpecific"}
    assert aliases["tls"][1] == {"hosts": ["portal.corp.internal"], "secretName": "corp-tls"}


def test_secrets_come_from_the_chart_or_an_existing_secret(rendered: Rendered) -> None:
    secret = find(rendered["redis"], "Secret")
    # Empty keys are left out.
    assert set(secret["data"]) == {"PORTAL_SECRET_KEY", "PORTAL_OIDC_CLIENT_SECRET", "PORTAL_REDIS_PASSWORD"}
    generated = find(rendered["minimal"], "Secret")["data"]["PORTAL_SECRET_KEY"]
    assert len(generated) >= 48

    existing = rendered["existing-secret"]
    assert "Secret" not in kinds(existing)
    pod = find(existing, "Deployment")["spec"]["template"]
    assert pod["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "portal-secrets"}}]
    assert "checksum/secret" not in pod["metadata"]["annotations"]


def test_the_taiga_and_gitlab_secrets_go_in_the_secret_never_in_the_config_map(rendered: Rendered) -> None:
    assert set(find(rendered["taiga"], "Secret")["data"]) == {
        "PORTAL_SECRET_KEY",
        "PORTAL_OIDC_CLIENT_SECRET",
        "PORTAL_TAIGA_USERNAME",
        "PORTAL_TAIGA_PASSWORD",
        "PORTAL_TAIGA_WEBHOOK_SECRET",
    }
    assert "password" not in str(portal_yaml(rendered["taiga"])).lower()
    assert set(find(rendered["gitlab"], "Secret")["data"]) == {
        "PORTAL_SECRET_KEY",
        "PORTAL_OIDC_CLIENT_SECRET",
        "PORTAL_GITLAB_TOKEN",
    }
    assert "token" not in str(portal_yaml(rendered["gitlab"])["upstreams"]["gitlab"])


def test_the_database_is_sqlite_on_a_volume_or_postgresql_for_several_replicas(
    helm: Helm, rendered: Rendered
) -> None:
    minimal = rendered["minimal"]
    claim = find(minimal, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "portal-data"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # layouts outlive uninstall
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod = find(minimal, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert volumes[mounts["/var/lib/portal"]]["persistentVolumeClaim"] == {"claimName": "portal-data"}
    assert portal_yaml(minimal)["database"] == {"data_dir": "/var/lib/portal"}

    postgresql = rendered["postgresql"]
    assert "PersistentVolumeClaim" not in kinds(postgresql)
    assert portal_yaml(postgresql)["database"] == {
        "url": "postgresql+psycopg://portal@postgresql.databases.svc.cluster.local:5432/portal"
    }
    assert "PORTAL_DATABASE_PASSWORD" in find(postgresql, "Secret")["data"]
    pod = find(postgresql, "Deployment")["spec"]["template"]["spec"]
    assert "data" not in {v["name"] for v in pod["volumes"]}

    minimal_values = SCENARIOS["minimal"]
    trial = helm.manifests(minimal_values, "database.sqlite.persistence.enabled=false")
    assert "PersistentVolumeClaim" not in kinds(trial)
    data = {v["name"]: v for v in find(trial, "Deployment")["spec"]["template"]["spec"]["volumes"]}["data"]
    assert "emptyDir" in data
    theirs = helm.manifests(minimal_values, "database.sqlite.persistence.existingClaim=portal-layouts")
    assert "PersistentVolumeClaim" not in kinds(theirs)
    data = {v["name"]: v for v in find(theirs, "Deployment")["spec"]["template"]["spec"]["volumes"]}["data"]
    assert data["persistentVolumeClaim"] == {"claimName": "portal-layouts"}


def test_two_replicas_share_postgresql_and_redis_and_keep_one_pod_through_drains(rendered: Rendered) -> None:
    manifests = rendered["redis"]
    assert find(manifests, "Deployment")["spec"]["replicas"] == 2
    config = portal_yaml(manifests)
    assert config["cache"]["redis_url"] == "redis://redis-master.redis.svc.cluster.local:6380/0"
    assert config["database"]["url"].startswith("postgresql+psycopg://portal@")
    assert find(manifests, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert "PodDisruptionBudget" not in kinds(rendered["minimal"])  # one pod: it would block node drains
    # Redis holds the sessions: no sticky cookie; without Redis, Traefik keeps a browser on one replica.
    shared = find(manifests, "Service", "portal")["metadata"].get("annotations", {})
    assert "traefik.ingress.kubernetes.io/service.sticky.cookie" not in shared
    plain = find(rendered["postgresql"], "Service", "portal")["metadata"]["annotations"]
    assert plain["traefik.ingress.kubernetes.io/service.sticky.cookie"] == "true"
    assert "annotations" not in find(rendered["minimal"], "Service", "portal")["metadata"]
    assert find(rendered["minimal"], "ServiceAccount")["automountServiceAccountToken"] is False


def test_a_pdb_may_count_pods_down_rather_than_up(helm: Helm) -> None:
    values = SCENARIOS["monitoring"]  # autoscaling from 2 pods
    budget = find(
        helm.manifests(values, "podDisruptionBudget.maxUnavailable=1", "autoscaling.minReplicas=1"),
        "PodDisruptionBudget",
    )
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {"app.kubernetes.io/name": "portal", "app.kubernetes.io/instance": "portal"}
        },
    }


def test_a_ca_bundle_is_mounted_from_a_config_map_outside_the_configuration(rendered: Rendered) -> None:
    manifests = rendered["ca-bundle"]
    pod = find(manifests, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["/etc/portal-ca"]["readOnly"] is True
    assert volumes[mounts["/etc/portal-ca"]["name"]]["configMap"] == {"name": "private-ca"}
    assert volumes[mounts["/etc/portal"]["name"]]["configMap"] == {"name": "portal"}
    config = portal_yaml(manifests)
    assert config["auth"]["oidc"]["ca_bundle"] == "/etc/portal-ca/ca.crt"
    assert config["upstreams"]["uptime_kuma"]["ca_bundle"] == "/etc/portal-ca/ca.crt"


def test_extra_env_sources_init_containers_and_pod_settings_reach_the_pods(helm: Helm) -> None:
    manifests = helm.manifests(
        SCENARIOS["minimal"],
        "extraEnvFrom[0].secretRef.name=corp-proxy",
        "initContainers[0].name=wait",
        "initContainers[0].image=busybox:1.36",
        "priorityClassName=platform-high",
        "runtimeClassName=gvisor",
        "revisionHistoryLimit=2",
        "hostAliases[0].ip=10.0.0.5",
        "hostAliases[0].hostnames={gitlab.corp.internal}",
        "dnsConfig.searches={corp.internal}",
        "dnsConfig.options[0].name=single-request-reopen",
        "resources.limits.ephemeral-storage=1Gi",
        "service.annotations.metallb\\.io/address-pool=internal",
    )
    deployment = find(manifests, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["revisionHistoryLimit"] == 2
    assert portal_container(manifests)["envFrom"] == [
        {"secretRef": {"name": "portal"}},
        {"secretRef": {"name": "corp-proxy"}},
    ]
    assert portal_container(manifests)["resources"]["limits"]["ephemeral-storage"] == "1Gi"
    assert pod["initContainers"] == [{"name": "wait", "image": "busybox:1.36"}]
    assert (pod["priorityClassName"], pod["runtimeClassName"]) == ("platform-high", "gvisor")
    assert pod["hostAliases"] == [{"ip": "10.0.0.5", "hostnames": ["gitlab.corp.internal"]}]
    assert pod["dnsConfig"] == {"searches": ["corp.internal"], "options": [{"name": "single-request-reopen"}]}
    annotations = find(manifests, "Service", "portal")["metadata"]["annotations"]
    assert annotations == {"metallb.io/address-pool": "internal"}


def test_common_labels_and_annotations_go_on_every_object_but_never_in_selectors(helm: Helm) -> None:
    manifests = helm.manifests(
        SCENARIOS["monitoring"],
        "commonLabels.team=platform",
        "commonLabels.app\\.kubernetes\\.io/name=renamed",  # never wins over the chart's own
        "commonAnnotations.owner=platform@example\\.org",
    )
    for item in manifests:
        labels, annotations = item["metadata"]["labels"], item["metadata"].get("annotations", {})
        assert labels["team"] == "platform", item["metadata"]["name"]
        assert labels["app.kubernetes.io/name"] in ("portal", "portal-test", "portal-config-check"), item[
            "metadata"
        ]["name"]
        assert annotations["owner"] == "platform@example.org", item["metadata"]["name"]
    check = find(manifests, "Job", "-config-check", hook=True)["spec"]["template"]["metadata"]["labels"]
    assert check["team"] == "platform" and check["app.kubernetes.io/name"] == "portal-config-check"
    deployment = find(manifests, "Deployment")["spec"]
    assert "team" not in deployment["selector"]["matchLabels"]
    assert deployment["template"]["metadata"]["labels"]["team"] == "platform"


def test_replicas_spread_over_nodes_softly_hard_or_as_told(helm: Helm, rendered: Rendered) -> None:
    selector = {"matchLabels": {"app.kubernetes.io/name": "portal", "app.kubernetes.io/instance": "portal"}}
    pod = find(rendered["redis"], "Deployment")["spec"]["template"]["spec"]
    assert pod["topologySpreadConstraints"] == [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
        }
    ]
    assert "affinity" not in pod
    values = SCENARIOS["redis"]
    strict = find(helm.manifests(values, "topologySpread.whenUnsatisfiable=DoNotSchedule"), "Deployment")
    spread = strict["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread[0]["whenUnsatisfiable"] == "DoNotSchedule"
    hard = find(helm.manifests(values, "podAntiAffinityPreset=hard"), "Deployment")["spec"]["template"][
        "spec"
    ]
    (term,) = hard["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector}
    soft = find(helm.manifests(values, "podAntiAffinityPreset=soft"), "Deployment")["spec"]["template"][
        "spec"
    ]
    (preferred,) = soft["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred["weight"] == 100 and preferred["podAffinityTerm"]["labelSelector"] == selector
    none = find(helm.manifests(values, "topologySpread.enabled=false"), "Deployment")["spec"]["template"][
        "spec"
    ]
    assert "topologySpreadConstraints" not in none


def test_as_a_subchart_the_parents_globals_name_the_registry_and_pull_secrets(
    helm: Helm, tmp_path: Path
) -> None:
    manifests = helm.manifests(chart=subchart(tmp_path))
    pod = find(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.platform.example.org/devsecops-portal:0.1.0"
    assert pod["imagePullSecrets"] == [{"name": "portal-pull"}, {"name": "platform-pull"}]
    alone = helm.manifests(SCENARIOS["minimal"], "image.registry=harbor.example.org", "image.tag=1.2.3")
    assert portal_container(alone)["image"] == "harbor.example.org/devsecops-portal:1.2.3"


def test_helm_test_pods_check_the_configuration_and_readiness_without_joining_the_service(
    rendered: Rendered, helm: Helm
) -> None:
    manifests = rendered["ca-bundle"]
    checker = find(manifests, "Pod", "-test-config")
    ready = find(manifests, "Pod", "-test-ready")
    for pod in (checker, ready):
        assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
        # Never the portal's selector: the Service and the policy's podSelector must not pick them.
        assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "portal-test"
        assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    container = checker["spec"]["containers"][0]
    assert container["command"] == [
        "python",
        "-m",
        "portal",
        "check-config",
        "--helm",
        "/etc/portal/portal.yaml",
    ]
    assert container["envFrom"] == portal_container(manifests)["envFrom"]
    assert "/etc/portal-ca" in {m["mountPath"] for m in container["volumeMounts"]}
    assert ready["spec"]["containers"][0]["command"][-1] == "http://portal:80/readyz"
    assert "Pod" not in kinds(helm.manifests(SCENARIOS["minimal"], "tests.enabled=false"))


def test_the_values_schema_refuses_unknown_keys(helm: Helm) -> None:
    """A misspelt key is refused by name (the settings an admin may set are shown rendered above)."""
    assert "replicas" in helm.refusal(SCENARIOS["minimal"], "replicas=3")
    assert "ingres" in helm.refusal(SCENARIOS["minimal"], "ingres.enabled=true")


def test_the_install_notes_print_this_releases_keycloak_and_taiga_urls(
    helm: Helm, tmp_path: Path, app: Flask
) -> None:
    """The exact URIs to paste into Keycloak's client and Taiga's webhooks: the portal's own routes."""
    rules = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
    text = notes(helm, tmp_path, SCENARIOS["k3s"])
    public = "https://portal.example.org"
    assert 'Keycloak: the client "portal" of the realm "corp" needs' in text
    assert f"Valid redirect URIs             {public}{rules['auth.callback']}\n" in text
    assert f"Valid post logout redirect URIs {public}{rules['auth.logged_out']}\n" in text
    assert f"Web origins                     {public}\n" in text
    assert f"Backchannel logout URL          {public}{rules['auth.backchannel_logout']}\n" in text
    assert f"webhooks of each project go to {public}{rules['tasks.taiga_webhook']}," in text
    assert "Plain HTTP" not in text
    http = notes(helm, tmp_path / "http", SCENARIOS["k3s"], "ingress.tls.enabled=false")
    assert (
        "Plain HTTP: ingress.tls.enabled=false, so the portal's address is http://portal.example.org" in http
    )
    assert "set config.auth.oidc.public_url=https://portal.example.org" in http
    said = notes(
        helm,
        tmp_path / "said",
        SCENARIOS["k3s"],
        "ingress.tls.enabled=false",
        "config.auth.oidc.public_url=https://portal.example.org",
    )
    assert "Plain HTTP" not in said  # TLS ends in front: the admin said so
    plain = notes(helm, tmp_path / "plain", SCENARIOS["minimal"])  # no Ingress, no Taiga
    assert "Valid redirect URIs             http://127.0.0.1:8080/auth/callback" in plain
    assert "example.org" not in plain.split("Keycloak:")[1]  # never the placeholder host
    assert "/hooks/taiga" not in plain
