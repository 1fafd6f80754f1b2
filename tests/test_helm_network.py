"""The chart's NetworkPolicy as K3s's kube-router applies it: after a Service has translated a
connection, so an egress rule must name the port the destination pod listens on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .support.helm import SCENARIOS, Helm, find, notes

pytestmark = pytest.mark.peers

Rendered = dict[str, list[dict[str, Any]]]
TRAEFIK = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
        }
    ],
    "ports": [{"protocol": "TCP", "port": 8000}, {"protocol": "TCP", "port": 8443}],
}


def _egress(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = find(manifests, "NetworkPolicy")["spec"]["egress"]
    return rules


def _url_ports(manifests: list[dict[str, Any]]) -> list[int]:
    """The ports open toward egressTo (anywhere by default)."""
    (rule,) = [r for r in _egress(manifests) if r["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0"}}]]
    return sorted(p["port"] for p in rule["ports"])


def test_the_policy_admits_traefik_prometheus_and_the_test_pod_and_lets_out_dns(rendered: Rendered) -> None:
    policy = find(rendered["redis"], "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "portal"
    traefik, prometheus, helm_test = policy["ingress"]
    assert traefik["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "traefik"}
    assert traefik["ports"] == [{"protocol": "TCP", "port": "http"}]
    assert prometheus["from"][0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert prometheus["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    test_pod = find(rendered["redis"], "Pod", "-test-ready")["metadata"]["labels"]
    assert helm_test["from"][0]["podSelector"]["matchLabels"].items() <= test_pod.items()
    dns = _egress(rendered["redis"])[0]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {(p["protocol"], p["port"]) for p in dns["ports"]} == {("UDP", 53), ("TCP", 53)}


def test_urls_outside_the_cluster_open_their_own_ports(rendered: Rendered) -> None:
    # Uptime Kuma (https: 443), Redis's port (6380), Keycloak's (443), PostgreSQL's (no port: 5432).
    assert _url_ports(rendered["redis"]) == [443, 5432, 6380]
    assert _url_ports(rendered["minimal"]) == [443]  # Keycloak
    assert _url_ports(rendered["taiga"]) == [443, 9443]  # Keycloak's, Taiga's
    assert _url_ports(rendered["gitlab"]) == [443, 8443]  # Keycloak's, GitLab's


def test_tools_behind_this_clusters_traefik_are_reached_on_its_pods_ports(rendered: Rendered) -> None:
    """https://sso.example.org resolving to the cluster: the connection ends on Traefik's pods, 8443."""
    for name in ("minimal", "redis", "k3s"):
        assert TRAEFIK in _egress(rendered[name]), name


def test_keycloak_at_its_service_is_reached_on_its_pods_port(rendered: Rendered) -> None:
    egress = _egress(rendered["keycloak-service"])
    keycloak = {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keycloak"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "keycloak"}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 8080}],
    }
    assert keycloak in egress
    # Its URL's port (80, the Service's) is not opened toward anywhere: nothing else to reach.
    assert not [r for r in egress if "ipBlock" in r["to"][0]]


def test_the_k3s_example_names_each_in_cluster_destination_by_its_pods(rendered: Rendered) -> None:
    egress = _egress(rendered["k3s"])
    ports = {
        next(iter(r["to"][0]["podSelector"]["matchLabels"].values())): [p["port"] for p in r["ports"]]
        for r in egress
        if "podSelector" in r["to"][0]
    }
    assert ports == {
        "kube-dns": [53, 53],
        "prometheus": [9090],
        "alertmanager": [9093],
        "portal-db": [5432],
        "valkey": [6379],
        "traefik": [8000, 8443],
    }
    # What is left toward anywhere: 443, Keycloak, Taiga, GitLab and Uptime Kuma by their public names.
    assert _url_ports(rendered["k3s"]) == [443]


def test_extra_ports_rules_and_removed_entries(helm: Helm) -> None:
    manifests = helm.manifests(
        SCENARIOS["minimal"],
        "networkPolicy.extraEgressPorts={8443}",
        "networkPolicy.inCluster.traefik=null",
        "networkPolicy.extraEgress[0].to[0].ipBlock.cidr=10.0.0.25/32",
        "networkPolicy.extraEgress[0].ports[0].port=25",
        "networkPolicy.extraIngress[0].from[0].ipBlock.cidr=10.0.0.0/8",
    )
    assert _url_ports(manifests) == [443, 8443]
    egress = _egress(manifests)
    assert TRAEFIK not in egress
    assert egress[-1] == {"to": [{"ipBlock": {"cidr": "10.0.0.25/32"}}], "ports": [{"port": 25}]}
    ingress = find(manifests, "NetworkPolicy")["spec"]["ingress"]
    assert ingress[-1] == {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}


def test_a_policy_never_opens_every_port_when_no_url_is_left(helm: Helm) -> None:
    """A rule without ports opens them all: the egressTo rule goes when every URL is in the cluster."""
    manifests = helm.manifests(
        SCENARIOS["keycloak-service"], "networkPolicy.inCluster.traefik=null", "tests.enabled=false"
    )
    assert all(rule.get("ports") for rule in _egress(manifests))


def test_the_notes_name_service_urls_without_an_in_cluster_entry(helm: Helm, tmp_path: Path) -> None:
    text = notes(helm, tmp_path, SCENARIOS["k3s"])
    assert "look like Services of this cluster" not in text  # every one named in the k3s example
    text = notes(helm, tmp_path / "again", SCENARIOS["redis"])
    assert "look like Services of this cluster" in text
    assert "  redis: redis-master.redis.svc.cluster.local" in text
    assert "  database: postgresql.databases.svc.cluster.local" in text


def test_forwarded_headers_trusted_from_anyone_only_behind_the_policy(helm: Helm, tmp_path: Path) -> None:
    values = helm.manifests(SCENARIOS["minimal"])
    container = find(values, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "PORTAL_FORWARDED_ALLOW_IPS", "value": "*"} in container["env"]
    warning = 'WARNING: networkPolicy.enabled=false while gunicorn.forwardedAllowIps is "*"'
    assert warning not in notes(helm, tmp_path / "on", SCENARIOS["minimal"])
    assert warning in notes(helm, tmp_path / "off", SCENARIOS["minimal"], "networkPolicy.enabled=false")
    narrowed = notes(
        helm,
        tmp_path / "narrowed",
        SCENARIOS["minimal"],
        "networkPolicy.enabled=false",
        "gunicorn.forwardedAllowIps=10.42.0.0/16",
    )
    assert warning not in narrowed
