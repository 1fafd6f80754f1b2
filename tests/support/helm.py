"""The helm CLI (installed into .tools/ by scripts/install-helm.sh) rendering the portal's chart."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .processes import ROOT

CHART = ROOT / "helm" / "portal"
# Every values scenario of the chart (ci/NAME-values.yaml), by NAME. The defaults alone are not
# one: `helm install` refuses them (the Keycloak client's secret has no default); "minimal" is
# the defaults plus that secret.
SCENARIOS = {p.name.removesuffix("-values.yaml"): p for p in sorted(CHART.glob("ci/*-values.yaml"))}
# A parent chart that ships the portal as a subchart and sets `global`.
PARENT = ROOT / "tests" / "fixtures" / "helm" / "parent"
KUBE_VERSION = "1.30.0"
NAMESPACE = "portal"
FULLNAME = "portal"  # release "portal" of the chart "portal"


class Helm:
    """Runs helm with its caches inside the project, never in the user's home."""

    def __init__(self) -> None:
        install = subprocess.run(
            [str(ROOT / "scripts" / "install-helm.sh")],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        self.binary = install.stdout.strip().splitlines()[-1]
        home = ROOT / ".tools" / "helm" / "home"
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], capture_output=True, text=True, env=self.env, timeout=120, check=False
        )

    def _template(
        self, chart: Path, values: Path | None, sets: tuple[str, ...]
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", "portal", str(chart), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
        if values is not None:
            args += ["--values", str(values)]
        for item in sets:
            args += ["--set", item]
        return self.run(*args)

    def template(self, values: Path | None = None, *sets: str, chart: Path = CHART) -> str:
        result = self._template(chart, values, sets)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout

    def manifests(self, values: Path | None = None, *sets: str, chart: Path = CHART) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(self.template(values, *sets, chart=chart)) if doc]

    def refusal(self, values: Path | None = None, *sets: str) -> str:
        """The error of a render the chart must refuse (fails the test when it renders)."""
        result = self._template(CHART, values, sets)
        assert result.returncode != 0, f"rendered although it should be refused: {sets}"
        return result.stderr


def subchart(directory: Path) -> Path:
    """The parent chart with a copy of the portal's chart in its charts/ (what `helm dependency` does)."""
    parent = directory / "parent"
    shutil.copytree(PARENT, parent)
    shutil.copytree(CHART, parent / "charts" / "portal")
    return parent


def is_hook(manifest: dict[str, Any]) -> bool:
    """Whether Helm runs it around an install or upgrade (a hook) rather than keeping it in the release."""
    annotations = manifest["metadata"].get("annotations") or {}
    return "helm.sh/hook" in annotations and annotations["helm.sh/hook"] != "test"


def find(
    manifests: list[dict[str, Any]], kind: str, name_suffix: str = "", hook: bool = False
) -> dict[str, Any]:
    """The one manifest of this kind (whose name ends with the suffix), among the release's
    objects, or among the install and upgrade hooks (`hook`)."""
    found = [
        m
        for m in manifests
        if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix) and is_hook(m) == hook
    ]
    assert len(found) == 1, [m["metadata"]["name"] for m in found]
    return found[0]


def kinds(manifests: list[dict[str, Any]]) -> set[str]:
    """The kinds of objects rendered."""
    return {m["kind"] for m in manifests}


def portal_container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The Deployment's portal container."""
    container: dict[str, Any] = find(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return container


def portal_yaml(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    """The portal.yaml the ConfigMap holds, parsed."""
    config: dict[str, Any] = yaml.safe_load(find(manifests, "ConfigMap", FULLNAME)["data"]["portal.yaml"])
    return config


def notes(helm: Helm, directory: Path, values: Path | None = None, *sets: str) -> str:
    """The install notes (NOTES.txt) as `helm install` prints them, rendered without a cluster.

    `helm template` never renders NOTES.txt: a copy of the chart holds it in a ConfigMap instead.
    """
    chart = directory / "notes-chart"
    shutil.copytree(CHART, chart)
    text = (chart / "templates" / "NOTES.txt").read_text(encoding="utf-8")
    (chart / "templates" / "NOTES.txt").unlink()
    wrapper = '{{- define "test.notes" }}' + text + "{{- end }}\n"
    wrapper += "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: install-notes}\n"
    wrapper += 'data:\n  notes: {{ include "test.notes" . | toJson }}\n'
    (chart / "templates" / "zz-notes.yaml").write_text(wrapper, encoding="utf-8")
    rendered = find(helm.manifests(values, *sets, chart=chart), "ConfigMap", "install-notes")
    return str(rendered["data"]["notes"])
