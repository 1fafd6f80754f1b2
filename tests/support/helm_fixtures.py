"""Session fixtures of the chart tests (registered by tests/conftest.py).

- `helm`: the Helm CLI (tests/support/helm.py).
- `rendered`: every values scenario of helm/portal/ci/ rendered once, by scenario name.
"""

from __future__ import annotations

from typing import Any

import pytest

from .helm import SCENARIOS, Helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    return Helm()


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> dict[str, list[dict[str, Any]]]:
    return {name: helm.manifests(values) for name, values in SCENARIOS.items()}
