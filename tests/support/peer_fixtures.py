"""Session fixtures for the real peers the widgets are tested against (registered by tests/conftest.py).

Each peer starts the first time a test asks for it, once per session, on free loopback ports,
and is stopped by PID when the session ends. Mark the tests that use them `peers`.

- `taiga_back`: TaigaBack, the real taiga-back 6.10.0 with its seeded data (`.url` is the API base
  http://127.0.0.1:PORT/api/v1/, `.seed` the seed.json, `.login(username)`). Tests seed what they
  need through the API, never rely on another test's changes, and reset the versions they change.
- `postgres`: PostgresServer for the portal's own database; `create_database(name)` returns a
  SQLAlchemy URL (`postgresql+psycopg://...`). Taiga's PostgreSQL is another server.
- `alertmanager`: AlertmanagerServer (API v2: `alerts()`, `post_alert()`, `create_silence()`,
  `silences()`, `expire_silence()`; `inhibit(rules)` replaces its inhibit rules through a reload).
- `controlled_target`: ControlledTarget, a scrape target whose gauges a test sets (`set(name, value)`).
- `prometheus_with_rules`: PrometheusServer scraping `controlled_target` (label `target="controlled"`),
  evaluating rules every second and sending alerts to `alertmanager`; `add_rules(name, groups)`
  loads a test's rules, `remove_rules(name)` unloads them.
- `rules`: `rules(name, *rule dicts)` loads a group into `prometheus_with_rules`, evaluated every
  second; unloaded after the test.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar

import pytest

from .alertmanager import AlertmanagerServer
from .metrics_target import ControlledTarget
from .postgres import PostgresServer
from .prometheus import PrometheusServer
from .taiga import TaigaBack


class _Stoppable(Protocol):
    def stop(self) -> None: ...


Peer = TypeVar("Peer", bound=_Stoppable)


def _run(name: str, make: Callable[[], Peer]) -> Iterator[Peer]:
    """Start a peer, say on stderr how long it took (pytest shows it with -s), stop it after."""
    began = time.monotonic()
    peer = make()
    print(f"[peers] {name} ready in {time.monotonic() - began:.2f} s", file=sys.stderr)
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture(scope="session")
def taiga_back() -> Iterator[TaigaBack]:
    """The real taiga-back 6.10.0 and its seeded data (prepared by `make test-deps`)."""
    yield from _run("taiga-back", lambda: TaigaBack().start())


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """PostgreSQL for the portal's own database: `create_database(name)` gives a SQLAlchemy URL."""
    yield from _run("postgres", lambda: PostgresServer().start())


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerServer]:
    """Alertmanager, its API v2 wrapped (alerts, silences)."""
    directory = tmp_path_factory.mktemp("alertmanager")
    yield from _run("alertmanager", lambda: AlertmanagerServer(directory).start())


@pytest.fixture(scope="session")
def controlled_target() -> Iterator[ControlledTarget]:
    """A scrape target whose gauges the test sets; clear what you set."""
    yield from _run("controlled target", lambda: ControlledTarget().start())


@pytest.fixture(scope="session")
def prometheus_with_rules(
    tmp_path_factory: pytest.TempPathFactory,
    alertmanager: AlertmanagerServer,
    controlled_target: ControlledTarget,
) -> Iterator[PrometheusServer]:
    """Prometheus scraping `controlled_target`, rules every second (`add_rules`), alerts to `alertmanager`."""
    directory = tmp_path_factory.mktemp("prometheus-rules")

    def start() -> PrometheusServer:
        server = PrometheusServer(directory, alertmanager=alertmanager.url).start()
        try:
            server.scrape("controlled", controlled_target.address)
        except BaseException:
            server.stop()
            raise
        return server

    yield from _run("prometheus with rules", start)


@pytest.fixture
def rules(prometheus_with_rules: PrometheusServer) -> Iterator[Callable[..., None]]:
    """`rules(name, *rule dicts)`: load a group evaluated every second; unloaded after the test."""
    loaded: list[str] = []

    def load(name: str, *rule: dict[str, Any]) -> None:
        prometheus_with_rules.add_rules(name, [{"name": name, "interval": "1s", "rules": list(rule)}])
        loaded.append(name)

    yield load
    for name in loaded:
        prometheus_with_rules.remove_rules(name)
