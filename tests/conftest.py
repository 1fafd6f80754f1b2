"""Fixtures: `app`, `client`, the Uptime Kuma simulator, and real peers (Redis, the Keycloak simulator)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, sync_playwright

from demo.browser import launch_chromium
from portal import create_app
from scripts.i18n import compile_catalogues
from simulators import uptime_kuma
from simulators.base import SimServer
from simulators.uptime_kuma import KumaWorld

from .support.keycloak import CLIENT_ID, CLIENT_SECRET, REALM, KeycloakSim
from .support.live import serve
from .support.processes import ROOT, RedisServer

pytest_plugins = ["tests.support.peer_fixtures", "tests.support.helm_fixtures"]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the translations when a catalogue is newer than its .mo (the .mo files are not
    committed): `pytest` run by hand after `scripts/i18n.py update` would otherwise test French
    pages that read English. Once, before xdist starts its workers (its hook runs last)."""
    if hasattr(session.config, "workerinput"):
        return
    catalogues = (ROOT / "portal" / "translations").glob("*/LC_MESSAGES/messages.po")
    if any(stale_catalogue(po) for po in catalogues):
        compile_catalogues()


def stale_catalogue(po: Path) -> bool:
    mo = po.with_suffix(".mo")
    return not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime


SECRET = "test-secret-key-0123456789"


@pytest.fixture
def kuma() -> Iterator[SimServer]:
    """A fresh Uptime Kuma simulator with the demo's pages; `kuma.world` is its data."""
    server, world = uptime_kuma.make_server()
    server.world = world  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


@pytest.fixture
def world(kuma: SimServer) -> KumaWorld:
    return kuma.world  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(autouse=True)
def _steady_flapping(request: pytest.FixtureRequest) -> None:
    """Pin the simulator's clock where the flapping monitor is up, so states are known."""
    if "kuma" in request.fixturenames:
        world: KumaWorld = request.getfixturevalue("world")
        now = time.time()
        pinned = now - now % 180 + 10
        world.clock = lambda: pinned


# The portal's database of apps built without a data directory of their own: out of the checkout.
_SCRATCH_DATA = tempfile.mkdtemp(prefix="portal-test-data-")
atexit.register(shutil.rmtree, _SCRATCH_DATA, ignore_errors=True)


def example_config() -> dict[str, Any]:
    """portal.example.yaml as a dict (the configuration admins start from), its database in a scratch dir."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "portal.example.yaml").read_text(encoding="utf-8"))
    config.setdefault("database", {})["data_dir"] = _SCRATCH_DATA
    return config


@pytest.fixture
def portal_config(kuma: SimServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The example configuration pointed at the simulator, with short cache times and its own database."""
    config = example_config()
    config["database"]["data_dir"] = str(tmp_path_factory.mktemp("data"))
    config["portal"]["demo"] = True
    config["auth"] = {"mode": "demo"}
    config["upstreams"]["uptime_kuma"].update(url=kuma.url, timeout=1.5, breaker_backoff=1)
    config["widgets"]["status"].update(ttl=30, refresh=30)
    # The metrics and incidents cards read a real Prometheus: their tests configure it
    # (tests/widgets/test_metrics_widget.py); elsewhere they say "not configured".
    # Every other upstream the example may set is left out too: an upstream a new widget adds to
    # the example would otherwise be called at its example address by every test.
    for name in list(config["upstreams"]):
        if name != "uptime_kuma":
            config["upstreams"].pop(name)
    return config


@pytest.fixture
def make_app(portal_config: dict[str, Any]) -> Callable[..., Flask]:
    """Build an app from the example configuration, with changes applied."""

    def build(changes: Callable[[dict[str, Any]], None] | None = None, **flask: Any) -> Flask:
        config = yaml.safe_load(yaml.safe_dump(portal_config))
        if changes:
            changes(config)
        return create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}, **flask})

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright, one for the whole session (one sync driver only)."""
    with sync_playwright() as playwright:
        launched = launch_chromium(playwright)
        yield launched
        launched.close()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis for one test (tests that stop it get a fresh one)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def fixture_json() -> Callable[[str], Any]:
    """Load a recorded upstream payload from tests/fixtures/."""
    import json

    def load(name: str) -> Any:
        return json.loads((Path(__file__).parent / "fixtures" / name).read_text(encoding="utf-8"))

    return load


# --- single sign-on ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def keycloak_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakSim]:
    """The Keycloak-shaped provider, started once for the whole run."""
    sim = KeycloakSim(tmp_path_factory.mktemp("keycloak")).start()
    yield sim
    sim.stop()


@pytest.fixture
def keycloak(keycloak_sim: KeycloakSim) -> Iterator[KeycloakSim]:
    """The provider, back to normal after each test that changes it."""
    keycloak_sim.reset()
    yield keycloak_sim
    keycloak_sim.reset()


def sso_config(base: dict[str, Any], server_url: str) -> dict[str, Any]:
    """A portal configuration in single sign-on mode against `server_url`."""
    config = yaml.safe_load(yaml.safe_dump(base))
    config["portal"]["demo"] = False
    config["auth"] = {
        "mode": "oidc",
        "oidc": {
            "server_url": server_url,
            "realm": REALM,
            "client_id": CLIENT_ID,
            "timeout": 3,
            "allowed_hosts": ["127.0.0.1", "localhost"],  # served on loopback at a free port
        },
        "role_labels": {"portal-admin": {"en": "Portal administrator", "fr": "Administrateur du portail"}},
    }
    # The status card is for administrators here, so that alice and bob see different widgets.
    config["widgets"]["status"]["roles"] = ["portal-admin"]
    return config


SSO_ENV = {"PORTAL_SECRET_KEY": SECRET, "PORTAL_OIDC_CLIENT_SECRET": CLIENT_SECRET}


@pytest.fixture
def make_sso_app(portal_config: dict[str, Any], keycloak: KeycloakSim) -> Callable[..., Flask]:
    """Build an app that logs in through the provider, with changes applied."""

    def build(
        changes: Callable[[dict[str, Any]], None] | None = None,
        server_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Flask:
        config = sso_config(portal_config, server_url or keycloak.url)
        if changes:
            changes(config)
        return create_app({"TESTING": True, "PORTAL": config, "ENV": {**SSO_ENV, **(env or {})}})

    return build


@pytest.fixture
def sso_app(make_sso_app: Callable[..., Flask]) -> Flask:
    return make_sso_app()


@pytest.fixture
def portal_url(sso_app: Flask) -> Iterator[str]:
    """The single sign-on app served on a free loopback port."""
    with serve(sso_app) as url:
        yield url
