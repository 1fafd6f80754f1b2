"""Every values scenario's configuration through the portal's own `check-config`, as its pod would
run it; the README's K3s example; and each secret a widget needs, documented where admins look."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.config import upstreams_of
from portal.widgets import WIDGETS

from .support.helm import CHART, SCENARIOS, Helm, find, portal_yaml, subchart
from .support.helm_pod import check_config
from .support.processes import ROOT

pytestmark = pytest.mark.peers

Rendered = dict[str, list[dict[str, Any]]]
FIXTURES = ROOT / "tests" / "fixtures" / "helm" / "objects"
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECRET_COMMAND = "create secret generic portal-secrets"
# The secrets of the portal itself; the widgets' come from their upstreams.
CORE_SECRETS = {
    "PORTAL_SECRET_KEY",
    "PORTAL_OIDC_CLIENT_SECRET",
    "PORTAL_REDIS_PASSWORD",
    "PORTAL_DATABASE_PASSWORD",
}


def _readme_secret() -> dict[str, Any]:
    """The Secret the README's `kubectl create secret generic portal-secrets` command makes."""
    start = README.index(SECRET_COMMAND)
    command = README[start : README.index("\n#", start)].replace("\\\n", " ")
    keys = [w.removeprefix("--from-literal=").split("=", 1)[0] for w in shlex.split(command, comments=True)]
    keys = [k for k in keys if k.startswith("PORTAL_")]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "portal-secrets"},
        "stringData": {key: f"readme-{key.lower()}-0123456789" for key in keys},
    }


def _existing(scenario: str) -> list[dict[str, Any]]:
    """What the admin creates before installing this scenario (Secrets, ConfigMaps)."""
    made = [_readme_secret()] if scenario == "k3s" else []
    fixture = FIXTURES / f"{scenario}.yaml"
    if fixture.exists():
        made += [doc for doc in yaml.safe_load_all(fixture.read_text(encoding="utf-8")) if doc]
    return made


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_the_portal_accepts_each_scenarios_configuration_as_its_pod_sees_it(
    rendered: Rendered, scenario: str, tmp_path: Path
) -> None:
    result = check_config(rendered[scenario], _existing(scenario), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration OK:")


def test_the_subchart_configuration_passes_check_config(helm: Helm, tmp_path: Path) -> None:
    manifests = helm.manifests(chart=subchart(tmp_path))
    result = check_config(manifests, [], tmp_path / "pod")
    assert result.returncode == 0, result.stderr


def test_check_config_in_the_pod_sees_what_a_mistake_would_break(rendered: Rendered, tmp_path: Path) -> None:
    """The simulated pod is strict: without the CA's ConfigMap, or a key of the Secret, it fails."""
    with pytest.raises(AssertionError, match="ConfigMap 'private-ca'"):
        check_config(rendered["ca-bundle"], [], tmp_path / "no-ca")
    secret = _readme_secret()
    del secret["stringData"]["PORTAL_GITLAB_TOKEN"]
    result = check_config(rendered["k3s"], [secret, *_existing("k3s")[1:]], tmp_path / "no-token")
    assert result.returncode == 2 and "PORTAL_GITLAB_TOKEN: required secret is missing" in result.stderr


@pytest.mark.parametrize("scenario", ["minimal", "k3s", "ca-bundle"])
def test_the_upgrade_check_runs_check_config_on_the_new_configuration_as_the_pod_would(
    rendered: Rendered, scenario: str, tmp_path: Path
) -> None:
    """The pre-install/pre-upgrade Job sees what the new pods will: the chart's Secret (its own
    copy, rendered again) or the admin's, the new portal.yaml, the extra volumes."""
    result = check_config(rendered[scenario], _existing(scenario), tmp_path, kind="Job")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration OK:")


def test_the_upgrade_check_stops_a_configuration_the_portal_would_refuse(helm: Helm, tmp_path: Path) -> None:
    """The chart renders it (the values schema cannot know time zones); the portal would refuse
    to start with it, so the hook fails before the running pod is replaced."""
    manifests = helm.manifests(SCENARIOS["minimal"], "config.portal.timezone=Mars/Olympus_Mons")
    result = check_config(manifests, [], tmp_path, kind="Job")
    assert result.returncode == 2
    # Named as the admin's values name it, not as the portal's file does.
    assert "config.portal.timezone: unknown time zone 'Mars/Olympus_Mons'" in result.stderr


def test_the_upgrade_check_is_a_hook_with_its_own_copies_and_never_the_portals_selector(
    rendered: Rendered, helm: Helm
) -> None:
    manifests = rendered["minimal"]
    hooks = [m for m in manifests if "helm.sh/hook" in (m["metadata"].get("annotations") or {})]
    checks = {m["kind"]: m for m in hooks if m["metadata"]["name"] == "portal-config-check"}
    assert set(checks) == {"ConfigMap", "Secret", "Job"}
    for item in checks.values():
        annotations = item["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        # Kept when it fails (its log says why), replaced at the next try.
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    weights = {
        kind: int(item["metadata"]["annotations"]["helm.sh/hook-weight"]) for kind, item in checks.items()
    }
    assert weights["ConfigMap"] < weights["Job"] and weights["Secret"] < weights["Job"]
    assert checks["ConfigMap"]["data"] == find(manifests, "ConfigMap", "portal")["data"]
    release_secret = find(manifests, "Secret", "portal")["data"]
    copy = checks["Secret"]["data"]
    assert copy.keys() == release_secret.keys()
    assert {k: v for k, v in copy.items() if k != "PORTAL_SECRET_KEY"} == {
        k: v for k, v in release_secret.items() if k != "PORTAL_SECRET_KEY"
    }  # the generated key is drawn again at each render, as at install
    pod = checks["Job"]["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "portal-config-check"
    # The chart's ServiceAccount does not exist yet at install: the namespace's default one.
    assert "serviceAccountName" not in pod["spec"] and pod["spec"]["automountServiceAccountToken"] is False
    assert checks["Job"]["spec"]["backoffLimit"] == 0
    # The admin's Secret: no copy, the Job reads it.
    k3s = rendered["k3s"]
    assert not [m for m in k3s if m["kind"] == "Secret" and m["metadata"]["name"] == "portal-config-check"]
    job = find(k3s, "Job", "-config-check", hook=True)["spec"]["template"]["spec"]
    assert job["containers"][0]["envFrom"][0] == {"secretRef": {"name": "portal-secrets"}}
    off = helm.manifests(SCENARIOS["minimal"], "configCheck.enabled=false")
    assert not [m for m in off if m["metadata"]["name"] == "portal-config-check"]


def test_the_readme_values_file_is_the_rendered_k3s_scenario() -> None:
    after = README.split("with a `portal-values.yaml` like this one", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", after, re.S)
    assert block is not None
    assert yaml.safe_load(block.group(1)) == yaml.safe_load(SCENARIOS["k3s"].read_text(encoding="utf-8"))


def test_the_k3s_example_installs_every_card(rendered: Rendered) -> None:
    """The README's example (the k3s scenario) sets up every registered widget's upstream: a new
    widget's upstream goes into helm/portal/ci/k3s-values.yaml and the README's copy of it."""
    config = portal_yaml(rendered["k3s"])
    needs = {w.slug: {u.name for u in w.upstreams} for w in WIDGETS}
    assert {"tasks", "deadlines", "status", "metrics", "incidents", "pipelines"} <= set(needs)
    for slug, upstreams in needs.items():
        assert upstreams <= set(config["upstreams"]), slug
        assert config.get("widgets", {}).get(slug, {}).get("enabled", True), slug
    assert config["widgets"]["pipelines"]["projects"] and config["widgets"]["status"]["slugs"]
    assert find(rendered["k3s"], "Deployment")["spec"]["replicas"] == 2


def _upstream_secrets() -> dict[str, list[Any]]:
    return {name: list(spec.secrets) for name, spec in upstreams_of(WIDGETS).items()}


def test_every_secret_has_a_documented_key_in_values_schema_and_readme() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))["secrets"]["env"]
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    described = schema["properties"]["secrets"]["properties"]["env"]["properties"]
    section = README[
        README.index("## Install on Kubernetes") : README.index("### What `helm install` refuses")
    ]
    wanted = CORE_SECRETS | {s.env for secrets in _upstream_secrets().values() for s in secrets}
    assert {
        "PORTAL_TAIGA_WEBHOOK_SECRET",
        "PORTAL_PROMETHEUS_TOKEN",
        "PORTAL_ALERTMANAGER_PASSWORD",
    } <= wanted
    for name in wanted:
        assert name in values, name
        assert described[name]["description"], name
        assert f"`{name}`" in section, name


def test_the_charts_required_secrets_are_the_widgets() -> None:
    """The chart refuses an upstream without the secrets its Upstream declares required, no others."""
    chart_list = CHART / "templates" / "_config.tpl"
    text = chart_list.read_text(encoding="utf-8")
    block = text[text.index('define "portal.requiredSecrets"') :]
    block = block[block.index("\n") + 1 : block.index("{{- end }}")]
    required = {name: [s.env for s in secrets if s.required] for name, secrets in _upstream_secrets().items()}
    assert yaml.safe_load(block) == {name: envs for name, envs in required.items() if envs}


def test_the_secret_keys_the_chart_takes_are_those_the_portal_reads() -> None:
    """secrets.env refuses any other name (a misspelt key would reach the pods unread)."""
    text = (CHART / "templates" / "_config.tpl").read_text(encoding="utf-8")
    block = text[text.index('define "portal.secretNames"') :]
    block = block[block.index("\n") + 1 : block.index("{{- end }}")]
    read = CORE_SECRETS | {s.env for secrets in _upstream_secrets().values() for s in secrets}
    assert set(yaml.safe_load(block)) == read
