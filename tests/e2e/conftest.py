"""The portal in a real browser: Debian's Chromium, driven by Playwright, against the portal
under gunicorn (two workers, as in production) and the simulators (Uptime Kuma, GitLab,
Prometheus, Alertmanager and Taiga).

The simulator runs in this process, so a test changes what the upstream serves through
`world`; its clock is pinned, so data only changes when a test changes it. Every page a test
opens is watched: a console error, an uncaught exception or a Content-Security-Policy
violation fails the test, and at the end the portal's log must hold no CSP report.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page

from portal.widgets import WIDGETS
from simulators import gitlab, taiga, uptime_kuma
from simulators import prometheus as prometheus_sim
from simulators.base import SimServer
from simulators.prometheus import MonitoringWorld
from simulators.uptime_kuma import KumaWorld, demo_world

from ..conftest import example_config
from ..support.processes import portal_process, wait_for
from ..support.taiga_portal import SERVICE as TAIGA_SERVICE
from .helpers import SETTLED, OpenPage, PageProblems, watched_page

REFRESH = 5  # seconds between polls: the smallest the configuration accepts
CACHE_TTL = 1  # seconds the portal keeps a result fresh
PIPELINES_TTL = REFRESH  # the pipelines card's (several GitLab calls per refresh)
STEADY_GAUGES = {"cpu": 48.5, "memory": 71.2, "restarts": 1, "ingress-5xx": 0.02}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@dataclass
class Portal:
    """The portal under test: its URL, its log, and a fragment version to wait for."""

    url: str
    log_file: Path
    baseline_version: str = ""

    def status_version(self) -> str:
        response = requests.get(f"{self.url}/widgets/status", headers={"Accept-Language": "en"}, timeout=10)
        return response.headers.get("X-Widget-Version", "")

    def log_records(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_file.read_text(encoding="utf-8").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found


@pytest.fixture(scope="session")
def kuma_server() -> Iterator[SimServer]:
    """The demo's Uptime Kuma data at a moment where every monitor is steady."""
    now = time.time()
    pinned = now - now % uptime_kuma.FLAP_PERIOD + 10  # the flapping monitor is up
    world = demo_world(clock=lambda: pinned)
    server, _ = uptime_kuma.make_server(world)
    server.world = world  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gitlab_server() -> Iterator[SimServer]:
    """The demo's GitLab data, its clock pinned (pipelines move only when a test moves them)."""
    now = time.time()
    world = gitlab.demo_world(clock=lambda: now)
    server, _ = gitlab.make_server(world)
    server.world = world  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def taiga_server() -> Iterator[SimServer]:
    """The demo's Taiga data; nothing moves but what a test changes."""
    # Dated in the zone of the suite's portal (the example's), as a team there dates its items.
    zone = ZoneInfo(example_config()["portal"]["timezone"])
    server, world = taiga.make_server(taiga.demo_world(zone=zone))
    world.on_request(lambda w: None)
    server.world = world  # type: ignore[attr-defined]
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def monitoring_servers() -> Iterator[tuple[SimServer, SimServer, MonitoringWorld]]:
    """The demo's Prometheus and Alertmanager, held still: gauges pinned, no alert on a schedule."""
    world = prometheus_sim.demo_world()
    for alert in world.alerts.values():
        alert.period = 0  # what fired earlier in the day stays; nothing starts or ends by itself
    for name, value in STEADY_GAUGES.items():
        world.pin(name, value)
    prometheus, alertmanager, _ = prometheus_sim.make_servers(world)
    prometheus.start()
    alertmanager.start()
    yield prometheus, alertmanager, world
    prometheus.stop()
    alertmanager.stop()


def e2e_config(
    kuma: SimServer,
    monitoring: tuple[SimServer, SimServer, MonitoringWorld] | None = None,
    monitoring_ttl: int = 86400,
    gitlab_server: SimServer | None = None,
    only: tuple[str, ...] | None = None,
    taiga_server: SimServer | None = None,
) -> dict[str, Any]:
    """The example configuration in demo mode on the simulators, polling every few seconds.

    Upstreams without a simulator here are left out (their cards say "not configured"); `only`
    names the registry's cards an app of the test's own registers (their sections alone are kept).
    """
    config = example_config()
    config["portal"]["demo"] = True
    config["auth"] = {"mode": "demo"}
    if only is not None:
        kept = [widget for widget in WIDGETS if widget.slug in only]
        config["widgets"] = {k: v for k, v in config["widgets"].items() if k in only}
        names = {upstream.name for widget in kept for upstream in widget.upstreams}
        config["upstreams"] = {k: v for k, v in config["upstreams"].items() if k in names}
    upstreams = config["upstreams"]
    upstreams["uptime_kuma"].update(url=kuma.url, timeout=3, breaker_backoff=1)
    config["widgets"]["status"].update(refresh=REFRESH, ttl=CACHE_TTL)
    for name in ("prometheus", "alertmanager", "gitlab", "taiga"):
        upstreams.pop(name, None)
    if monitoring is not None:
        prometheus, alertmanager, _ = monitoring
        upstreams["prometheus"] = {"url": prometheus.url, "timeout": 3, "breaker_backoff": 1}
        upstreams["alertmanager"] = {"url": alertmanager.url, "timeout": 3, "breaker_backoff": 1}
        for slug in ("metrics", "incidents"):
            config["widgets"][slug].update(refresh=REFRESH, ttl=monitoring_ttl)
        config["widgets"]["incidents"]["history_step"] = 15
    if gitlab_server is not None:
        # The simulators share this process with the browser's driver: on a busy machine a refresh
        # of several calls may take a few seconds. A request waits for it (up to each upstream's
        # timeout) rather than show the older data as "taking too long" meanwhile.
        upstreams["gitlab"] = {"url": gitlab_server.url, "timeout": 8, "breaker_backoff": 1}
        config["cache"]["answer_within"] = 8
        # Its data changes only when a test changes it: fetched once per poll at most.
        config["widgets"]["pipelines"].update(refresh=REFRESH, ttl=PIPELINES_TTL)
    # The tests change an upstream's data and expect the next poll after the TTL to show it: that
    # poll waits for its refresh (on a busy machine the simulators may take more than the 0.15 s
    # a poll waits by default, and the change would show one poll later).
    config["cache"]["refresh_within"] = config["cache"]["answer_within"]
    if taiga_server is not None:
        upstreams["taiga"] = {"url": f"{taiga_server.url}/api/v1/", "timeout": 8, "breaker_backoff": 1}
    else:  # no Taiga: no Taiga cards
        for slug in ("tasks", "deadlines"):
            if slug in config["widgets"]:
                config["widgets"][slug]["enabled"] = False
    return config


E2E_ENV = {"PORTAL_GITLAB_TOKEN": gitlab.TOKEN, **TAIGA_SERVICE}  # the simulators' secrets


@contextmanager
def served_portal(
    config: dict[str, Any],
    directory: Path,
    app_module: str = "portal.wsgi:app",
    threads: int = 4,
    expected_errors: tuple[str, ...] = (),
) -> Iterator[Portal]:
    """`config` under gunicorn (two workers), its database in `directory`; at the end, no CSP
    report and no error logged (but those whose event is one of `expected_errors`)."""
    config["database"] = {**config.get("database", {}), "data_dir": str(directory / "data")}
    with portal_process(
        config, directory, workers=2, threads=threads, app_module=app_module, extra_env=E2E_ENV
    ) as url:
        port = url.rsplit(":", 1)[1]
        found = Portal(url, directory / f"portal-{port}.log")
        yield found
        records = found.log_records()
    reports = [r for r in records if r.get("event") == "csp_violation"]
    assert not reports, f"the portal received Content-Security-Policy reports: {reports}"
    errors = [r for r in records if r.get("level") in ("ERROR", "CRITICAL")]
    errors = [r for r in errors if r.get("event") not in expected_errors]
    assert not errors, f"the portal logged errors: {errors}"


@pytest.fixture(scope="session")
def every_card_config(
    kuma_server: SimServer,
    gitlab_server: SimServer,
    monitoring_servers: tuple[SimServer, SimServer, MonitoringWorld],
    taiga_server: SimServer,
) -> Callable[..., dict[str, Any]]:
    """`every_card_config(**e2e_config options)`: a new configuration of every card on the simulators."""

    def make(**options: Any) -> dict[str, Any]:
        return e2e_config(
            kuma_server, monitoring_servers, gitlab_server=gitlab_server, taiga_server=taiga_server, **options
        )

    return make


@pytest.fixture(scope="session")
def portal(
    every_card_config: Callable[..., dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    """Every card on the simulators, polling every few seconds, under gunicorn.

    The metrics and incidents cards keep their first data for the session: their polls are
    cache hits, so the status card's tests see only its own fetches (a request waits for at most
    `max_waiting` fetches at once; test_monitoring.py has a portal whose cards refresh every second).
    """
    config = every_card_config()
    with served_portal(config, tmp_path_factory.mktemp("portal-e2e")) as found:
        found.baseline_version = found.status_version()
        for card in (f"{found.url}/widgets/metrics", f"{found.url}/widgets/incidents"):
            # Each worker fetches these now, not during a test: a new connection each time, so
            # that both workers answer some of them.
            for _ in range(12):
                wait_for(lambda card=card: "is-ok" in requests.get(card, timeout=10).text)  # type: ignore[misc]
        yield found


@pytest.fixture
def world(kuma_server: SimServer, portal: Portal) -> Iterator[KumaWorld]:
    """The simulator's data, for one test to change; restored (and served again) afterwards."""
    current: KumaWorld = kuma_server.world  # type: ignore[attr-defined]
    saved = copy.deepcopy(current.monitors)
    yield current
    current.monitors.clear()
    current.monitors.update(saved)
    wait_for(lambda: portal.status_version() == portal.baseline_version, timeout=20, what="restored data")
    # The other worker may still hold the changed data, and would show it (as current, while its
    # refresh runs) to a page whose first load finds every waiting slot taken by the other cards.
    # Once it has expired, a request refreshes it: enough requests, each on a new connection,
    # that both workers answer some of them with the restored data.
    time.sleep(CACHE_TTL + 0.2)
    for _ in range(16):
        assert portal.status_version() == portal.baseline_version, "a worker kept the changed data"


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def open_page(browser: Browser, portal: Portal, problems: PageProblems) -> Iterator[OpenPage]:
    """`open_page(path, language=, scheme=, width=, height=, settle=, **context options)`.

    A fresh browser context per page (no shared cookies or storage), watched for console
    errors and CSP violations. With `settle`, returns once every card has left its skeleton.
    """
    contexts: list[BrowserContext] = []

    def open_(
        path: str = "/",
        *,
        language: str = "en",
        scheme: str = "light",
        width: int = 1280,
        height: int = 900,
        settle: bool = True,
        before: Callable[[Page], None] | None = None,
        **options: Any,
    ) -> Page:
        context = browser.new_context(
            base_url=portal.url,
            locale=language,
            color_scheme=scheme,  # type: ignore[arg-type]
            viewport={"width": width, "height": height},
            **options,
        )
        contexts.append(context)
        context.set_default_timeout(20_000)
        context.on("request", lambda r: "/csp-report" in r.url and problems.csp.append(f"report {r.url}"))
        page = watched_page(context, problems)
        page.on("response", lambda r: r.status >= 400 and problems.failed.append(f"{r.status} {r.url}"))
        if before:
            before(page)
        page.goto(path)
        if settle:
            page.wait_for_function(SETTLED)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not problems.console, f"console errors: {problems.console} (answers: {problems.failed})"
    assert not problems.csp, f"Content-Security-Policy violations: {problems.csp}"
