"""The pod's resources as the chart's default values set them, to read the figures against.

The bench runs the chart's gunicorn settings on this machine's cores; an admin installs the
chart's limits. These helpers say what those limits are, so that a figure can say how many
people fit within them.
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.support.processes import ROOT

VALUES = ROOT / "helm" / "portal" / "values.yaml"


def limits() -> dict[str, Any]:
    """`resources.limits` of the chart's default values."""
    values = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    return dict(values["resources"]["limits"])


def memory_limit() -> str:
    """The pod's memory limit, as written in the values ("512Mi")."""
    return str(limits()["memory"])


def cpu_limit() -> str:
    """The pod's CPU limit, as written in the values ("2", "1500m")."""
    return str(limits()["cpu"])


def cores(quantity: str) -> float:
    """A Kubernetes CPU quantity in cores: "2" → 2.0, "1500m" → 1.5."""
    if quantity.endswith("m"):
        return int(quantity[:-1]) / 1000
    return float(quantity)


def people_within(cpu_ms_per_person_minute: float, quantity: str) -> int:
    """How many people a CPU limit holds at a measured cost per person (0 if nothing was spent)."""
    if cpu_ms_per_person_minute <= 0:
        return 0
    return int(cores(quantity) * 60_000 / cpu_ms_per_person_minute)
