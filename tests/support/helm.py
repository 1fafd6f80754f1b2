"""The helm CLI (installed into .tools/ by scripts/install-helm.sh) rendering the portal's chart."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .processes import ROOT

CHART = ROOT / "helm" / "portal"
SCENARIOS = {
    "default": None,
    **{p.name.removesuffix("-values.yaml"): p for p in sorted(CHART.glob("ci/*-values.yaml"))},
}
KUBE_VERSION = "1.30.0"


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

    def template(self, values: Path | None = None, *sets: str) -> str:
        args = ["template", "portal", str(CHART), "--namespace", "portal", "--kube-version", KUBE_VERSION]
        if values is not None:
            args += ["--values", str(values)]
        for item in sets:
            args += ["--set", item]
        result = self.run(*args)
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout

    def manifests(self, values: Path | None = None, *sets: str) -> list[dict[str, Any]]:
        return [doc for doc in yaml.safe_load_all(self.template(values, *sets)) if doc]


def find(manifests: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    """The one manifest of this kind (whose name ends with the suffix)."""
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, [m["metadata"]["name"] for m in found]
    return found[0]
