"""What a pod of the chart would see, without a cluster: its environment and its mounted files.

The chart tests run the portal's own `check-config` on a rendered configuration as the pod would
run it: the Secret's keys as variables (the chart's Secret, or the one the admin made), extraEnv
with its secretKeyRef resolved, and the ConfigMap and Secret volumes written under a directory
that stands for the pod's root. A Secret or ConfigMap the pod names but nobody made fails the test.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from .processes import ROOT

Manifest = dict[str, Any]


def _object(objects: list[Manifest], kind: str, name: str) -> Manifest:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert found, f"the pod needs the {kind} {name!r}, which neither the chart nor the admin made"
    return found[0]


def _data(item: Manifest) -> dict[str, str]:
    """The keys of a Secret (base64 `data`, plain `stringData`) or a ConfigMap, as text."""
    if item["kind"] == "Secret":
        values = {k: base64.b64decode(v).decode() for k, v in (item.get("data") or {}).items()}
        return {**values, **(item.get("stringData") or {})}
    return dict(item.get("data") or {})


def _reference(objects: list[Manifest], source: Manifest) -> dict[str, str]:
    if "secretRef" in source:
        return _data(_object(objects, "Secret", source["secretRef"]["name"]))
    return _data(_object(objects, "ConfigMap", source["configMapRef"]["name"]))


def environment(container: Manifest, objects: list[Manifest]) -> dict[str, str]:
    """The container's variables: envFrom first, then env (which wins), references resolved."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        env.update(_reference(objects, source))
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        origin = item["valueFrom"]
        if "secretKeyRef" in origin:
            ref = origin["secretKeyRef"]
            env[item["name"]] = _data(_object(objects, "Secret", ref["name"]))[ref["key"]]
        elif "configMapKeyRef" in origin:
            ref = origin["configMapKeyRef"]
            env[item["name"]] = _data(_object(objects, "ConfigMap", ref["name"]))[ref["key"]]
    return env


def mount(pod: Manifest, container: Manifest, objects: list[Manifest], root: Path) -> list[str]:
    """Write the container's ConfigMap and Secret volumes under `root`; the mount paths, longest first."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    paths = []
    for mounted in container.get("volumeMounts") or []:
        volume = volumes[mounted["name"]]
        target = root / mounted["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        paths.append(mounted["mountPath"])
        if "configMap" in volume:
            source = _data(_object(objects, "ConfigMap", volume["configMap"]["name"]))
            items = volume["configMap"].get("items")
        elif "secret" in volume:
            source = _data(_object(objects, "Secret", volume["secret"]["secretName"]))
            items = volume["secret"].get("items")
        else:
            continue  # emptyDir, claims: an empty directory
        names = {i["key"]: i["path"] for i in items} if items else {k: k for k in source}
        for key, path in names.items():
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_text(source[key], encoding="utf-8")
    return sorted(paths, key=len, reverse=True)


def _relocate(value: Any, paths: list[str], root: Path) -> Any:
    """The configuration with every path under a mount moved under `root`."""
    if isinstance(value, dict):
        return {k: _relocate(v, paths, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relocate(v, paths, root) for v in value]
    if isinstance(value, str):
        for path in paths:
            if value.startswith(path.rstrip("/") + "/"):
                return str(root / value.lstrip("/"))
    return value


def check_config(
    manifests: list[Manifest], existing: list[Manifest], root: Path, kind: str = "Deployment"
) -> subprocess.CompletedProcess[str]:
    """`python -m portal check-config` on the rendered portal.yaml, as the portal's pod runs it
    (`kind` "Job": as the chart's configuration check before an install or upgrade runs it)."""
    objects = manifests + existing
    pod = next(m for m in manifests if m["kind"] == kind)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    paths = mount(pod, container, objects, root)
    env = environment(container, objects)
    config_file = root / env["PORTAL_CONFIG"].lstrip("/")
    config = _relocate(yaml.safe_load(config_file.read_text(encoding="utf-8")), paths, root)
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {k: str(_relocate(v, paths, root)) if k.endswith("_FILE") else v for k, v in env.items()}
    # The Job's own command (python -m portal check-config ... /etc/portal/portal.yaml); the
    # portal's container runs gunicorn, which checks as the plain command does.
    command = container.get("command") or ["python", "-m", "portal", "check-config", env["PORTAL_CONFIG"]]
    program, *arguments, _ = command
    assert program == "python" and arguments[:3] == ["-m", "portal", "check-config"], command
    return subprocess.run(
        [sys.executable, *arguments, str(config_file)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        timeout=60,
        check=False,
    )
