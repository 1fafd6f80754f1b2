"""What every phase shares: how long each runs, the peers, a portal to start, logged-in sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.support.keycloak import KeycloakSim, login
from tests.support.processes import RedisServer

from .monitoring import Monitoring
from .report import Figure
from .stack import Server, Simulator, portal, portal_config

COOKIE = "portal_session"
USER = "alice"


@dataclass(frozen=True)
class Durations:
    """Seconds each phase runs; `--quick` shortens every one of them (a smoke run inside `make
    test`: every figure produced, none of their values judged)."""

    wrk: float  # each throughput run
    wrk_runs: int  # throughput: runs of each measurement in which both workers served (the best counts)
    amplification: float  # each amplification run (with and without Redis), each Taiga load run
    hang: float  # isolation: the baseline window, then the hang
    settled: float  # isolation: from a cold start's first arrival until the other cards' first fetches
    soak: float
    soak_warmup: float
    fault: float  # each upstream fault under load
    redis_down: float  # Redis stopped, under load


FULL = Durations(
    wrk=20,
    wrk_runs=2,
    amplification=120,
    hang=30,
    settled=15,
    soak=600,
    soak_warmup=90,
    fault=15,
    redis_down=10,
)
QUICK = Durations(
    wrk=1, wrk_runs=1, amplification=6, hang=4, settled=8, soak=6, soak_warmup=4, fault=3, redis_down=2
)


@dataclass
class Bench:
    """One `make bench` run."""

    directory: Path
    quick: bool
    sim: Simulator
    keycloak: KeycloakSim
    redis: RedisServer
    monitoring: Monitoring | None = None  # the real Prometheus and Alertmanager of both cards
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def durations(self) -> Durations:
        return QUICK if self.quick else FULL

    def add(self, section: str, name: str, value: str, goal: str = "", passed: bool | None = None) -> None:
        self.figures.append(Figure(section, name, value, goal, passed))

    def config(
        self, redis: bool = True, upstream: dict[str, Any] | None = None, **status: Any
    ) -> dict[str, Any]:
        urls = self.monitoring.urls() if self.monitoring else None
        config = portal_config(
            self.sim.url, self.keycloak.url, self.redis.url if redis else None, urls, **status
        )
        config["upstreams"]["uptime_kuma"].update(upstream or {})
        config.setdefault("database", {})["data_dir"] = str(self.directory / "data")  # out of the checkout
        return config

    @contextmanager
    def portal(
        self,
        redis: bool = True,
        env: dict[str, str] | None = None,
        upstream: dict[str, Any] | None = None,
        **status: Any,
    ) -> Iterator[Server]:
        """The portal with the production gunicorn settings, single sign-on and the simulator."""
        config = self.config(redis, upstream, **status)
        if redis:
            # Every phase starts cold: its own keys in the shared Redis.
            config["cache"]["key_prefix"] = f"bench{len(self.figures)}-{id(config)}:"
        with portal(config, self.directory, env) as server:
            yield server


def session_cookie(base: str, username: str = USER) -> str:
    """Log in through the provider's form, as a person would; the Cookie header of that session."""
    browser = requests.Session()
    page = login(browser, base, username)
    if page.status_code != 200:
        raise RuntimeError(f"login failed: {page.status_code} {page.text[:300]}")
    value = browser.cookies.get(COOKIE)
    if not value:
        raise RuntimeError("login left no session cookie")
    return f"{COOKIE}={value}"


def session_cookies(base: str, count: int) -> list[str]:
    return [session_cookie(base, "alice" if i % 2 == 0 else "bob") for i in range(count)]
