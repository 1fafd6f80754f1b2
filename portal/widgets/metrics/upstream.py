"""Prometheus as an upstream: its configuration section, its secrets and its client.

The metrics and incidents widgets both name `PROMETHEUS`: it is configured once
(`upstreams.prometheus`), has one client, one circuit breaker and one metrics label. The
section and the credentials helper are shared with Alertmanager (incidents/upstream.py).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import TypeVar

from pydantic import Field

from ...config import ConfigError, LinkUrl, UpstreamSection
from ...upstreams.upstream import ClientSetup, Secret, Upstream
from .client import PrometheusClient

C = TypeVar("C")


class MonitoringSection(UpstreamSection):
    """An HTTP API behind optional basic auth or a bearer token (Prometheus, Alertmanager).

    Neither has auth of its own; a reverse proxy or `--web.config.file` adds it. The user name
    lives here, the password or token in the environment (see the upstream's `Secret`s).
    """

    credentials_go = "set username here, and the password or token in the environment"

    username: str | None = Field(None, min_length=1, max_length=256)
    # The tool as browsers reach it, for the card's links; default: `url`.
    public_url: LinkUrl | None = None

    @property
    def link_url(self) -> str:
        return str(self.public_url or self.url).rstrip("/")

    def credential_problems(self, name: str, credentials: Mapping[str, str]) -> list[str]:
        env = f"PORTAL_{name.upper()}"
        token, password = credentials.get("token"), credentials.get("password")
        if token and password:
            return [f"upstreams.{name}: give {env}_TOKEN or {env}_PASSWORD, not both"]
        if password and self.username is None:
            return [f"upstreams.{name}.username: required with {env}_PASSWORD"]
        if self.username is not None and not token and not password:
            return [f"upstreams.{name}.username: {env}_PASSWORD is missing (basic auth needs both)"]
        return []


class PrometheusSection(MonitoringSection):
    """upstreams.prometheus: a Prometheus server (or a compatible query API)."""

    # A day of alert history is larger than a status page.
    max_bytes: int = Field(5_000_000, ge=1024, le=50_000_000)


def auth_headers(setup: ClientSetup, name: str) -> dict[str, str]:
    """`Authorization` from the credentials: a bearer token, or basic auth with `username`."""
    section = setup.section
    assert isinstance(section, MonitoringSection)
    problems = section.credential_problems(name, setup.credentials)
    if problems:  # load_secrets refused them already; a setup made otherwise is refused here
        raise ConfigError("\n".join(problems))
    token = setup.credentials.get("token")
    if token:
        return {"Authorization": f"Bearer {token}"}
    if section.username is None:
        return {}
    pair = f"{section.username}:{setup.credentials['password']}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def monitoring_upstream(
    name: str, label: str, client: Callable[..., C], section: type[MonitoringSection]
) -> Upstream[C]:
    """An upstream behind optional auth: `PORTAL_<NAME>_TOKEN` or `PORTAL_<NAME>_PASSWORD`."""
    env = f"PORTAL_{name.upper()}"

    def make(setup: ClientSetup) -> C:
        headers = auth_headers(setup, name)
        assert isinstance(setup.section, MonitoringSection)
        return client(
            setup.session, setup.base_url, headers, setup.limits, setup.verify, setup.section.link_url
        )

    secrets = (
        Secret(f"{env}_TOKEN", "token", required=False, help=f"a bearer token for {label}"),
        Secret(
            f"{env}_PASSWORD", "password", required=False, help=f"the password of upstreams.{name}.username"
        ),
    )
    return Upstream(name, label, make, section, secrets)


PROMETHEUS: Upstream[PrometheusClient] = monitoring_upstream(
    "prometheus", "Prometheus", PrometheusClient, PrometheusSection
)
