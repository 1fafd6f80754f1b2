"""`Upstream`: one tool the portal reads from, as a widget names it.

An upstream brings its configuration section (`upstreams.<name>`, a model deriving from
`UpstreamSection`), the secrets it needs from the environment, and how its client is made.
Several widgets may name the same upstream (metrics and incidents both read Prometheus): it
is configured once, has one client, one circuit breaker and one metrics label.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import requests

from ..config import UpstreamSection
from .http import HttpLimits, Quota

if TYPE_CHECKING:
    from ..caching.stores import Store

C = TypeVar("C")


@dataclass(frozen=True)
class Secret:
    """A value an upstream needs from the environment (or NAME_FILE), never from the YAML."""

    env: str  # PORTAL_TAIGA_PASSWORD
    key: str  # its name in `ClientSetup.credentials`: "password"
    required: bool = True  # missing while the upstream is configured: the start is refused
    help: str = ""  # what it is, for the error message


@dataclass(frozen=True)
class ClientSetup:
    """What a client factory gets: the validated section, an HTTP session, secrets, the store."""

    section: UpstreamSection
    session: requests.Session
    credentials: Mapping[str, str]
    store: Store  # shared by every worker (and replica with Redis): locks, tokens
    # Told the upstream's rate limit when its answers report one (BoundedJsonClient's on_quota):
    # the metrics module exports it per upstream.
    report_quota: Callable[[Quota], None] | None = None

    @property
    def base_url(self) -> str:
        return str(self.section.url).rstrip("/")

    @property
    def limits(self) -> HttpLimits:
        return HttpLimits(self.section.timeout, self.section.connect_timeout, self.section.max_bytes)

    @property
    def verify(self) -> bool | str:
        """requests' `verify`: the CA bundle when one is configured, else whether to verify."""
        return str(self.section.ca_bundle) if self.section.ca_bundle else self.section.verify_tls


@dataclass(frozen=True, eq=False)
class Upstream(Generic[C]):
    """A tool behind an API: its config key, its name for users, its settings, secrets and client."""

    name: str  # the key under `upstreams:` in the configuration, and the metrics label
    label: str  # the tool's name in messages ("Uptime Kuma")
    make_client: Callable[[ClientSetup], C]
    settings: type[UpstreamSection] = UpstreamSection
    secrets: tuple[Secret, ...] = ()

    def __repr__(self) -> str:
        return f"Upstream({self.name!r})"


AnyUpstream = Upstream[Any]
