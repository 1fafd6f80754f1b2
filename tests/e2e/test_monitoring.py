"""The metrics and incidents cards in the browser: a gauge changes state, an alert fires then
resolves, and the severity filter cuts the list, holds across polls and is kept for the person.

The Prometheus and Alertmanager simulators run in this process (tests/e2e/conftest.py): a test
pins a gauge or fires an alert there, and the cards, polling on their own, show it. A portal of
this module's own refreshes both cards every second (the suite's keeps their data longer).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from simulators.base import SimServer
from simulators.prometheus import MonitoringWorld

from .conftest import CACHE_TTL, REFRESH, STEADY_GAUGES, e2e_config, served_portal
from .helpers import OpenPage, PageProblems

ALERT = "PortalE2EDiskFull"
WAIT = (REFRESH * 3 + 5) * 1000  # ms: a few polls


@pytest.fixture(scope="module")
def live(
    kuma_server: SimServer,
    monitoring_servers: tuple[SimServer, SimServer, MonitoringWorld],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The portal with both cards fresh for a second, under gunicorn; its base URL."""
    config = e2e_config(kuma_server, monitoring_servers, monitoring_ttl=CACHE_TTL)
    with served_portal(config, tmp_path_factory.mktemp("portal-e2e-monitoring"), threads=8) as found:
        yield found.url


@pytest.fixture
def monitoring(monitoring_servers: tuple[SimServer, SimServer, MonitoringWorld]) -> Iterator[MonitoringWorld]:
    """The simulators' data for one test to change; put back as it was afterwards."""
    world = monitoring_servers[2]
    yield world
    for name, value in STEADY_GAUGES.items():
        world.pin(name, value)
    with world.lock:
        world.alerts.pop(ALERT, None)
    time.sleep(CACHE_TTL + 0.2)


def test_a_gauge_changes_state_as_prometheus_answers(
    open_page: OpenPage, live: str, monitoring: MonitoringWorld
) -> None:
    page = open_page(f"{live}/")
    cpu = page.locator("#gauge-cpu")
    expect(cpu).to_have_class(re.compile(r"\bis-ok\b"))
    expect(cpu.locator(".gauge__value")).to_have_text("48.5%")

    monitoring.pin("cpu", 95.0)
    expect(cpu).to_have_class(re.compile(r"\bis-critical\b"), timeout=WAIT)
    expect(cpu.locator(".gauge-state")).to_have_text("Critical")
    expect(cpu.locator(".gauge__value")).to_have_text("95.0%")
    region = page.locator("#widget-metrics [data-live-region]")
    expect(region).to_contain_text("1 critical", timeout=5000)  # told to screen readers

    monitoring.pin("cpu", 80.0)
    expect(cpu).to_have_class(re.compile(r"\bis-warn\b"), timeout=WAIT)
    expect(cpu.locator(".gauge-state")).to_have_text("Warning")


def test_an_alert_moves_from_firing_to_resolved(
    open_page: OpenPage, live: str, monitoring: MonitoringWorld
) -> None:
    page = open_page(f"{live}/")
    row = page.locator("#widget-incidents .alert-row", has=page.locator("bdi", has_text=ALERT))
    expect(row).to_have_count(0)

    monitoring.fire(ALERT, severity="critical", namespace="gitlab")
    expect(row).to_have_class(re.compile(r"\bis-firing\b"), timeout=WAIT)
    expect(row.locator(".alert-state")).to_have_text("Firing")
    expect(row.locator(".alert-row__when")).to_contain_text("Firing since")

    monitoring.resolve(ALERT)
    expect(row).to_have_class(re.compile(r"\bis-resolved\b"), timeout=WAIT)
    expect(row.locator(".alert-state")).to_have_text("Resolved")
    expect(row.locator(".alert-row__when")).to_contain_text("From ")
    expect(row.locator(".ribbon__firing")).to_have_count(1)


def test_the_severity_filter_cuts_holds_and_is_kept(open_page: OpenPage, live: str) -> None:
    page = open_page(f"{live}/")
    rows = page.locator("#widget-incidents .alert-row")
    expect(rows.and_(page.locator(":not(.is-critical)")).first).to_be_visible()

    with page.expect_response(lambda r: r.url.endswith("/widgets/incidents/severity")) as kept:
        page.locator("#incidents-severity-critical").click()  # its pill, as a person clicks it
    assert kept.value.status == 204  # kept for this person, in the portal's database
    expect(page.locator("#incidents-severity-critical")).to_be_checked(timeout=10_000)
    others = page.locator("#widget-incidents .alert-row:not(.is-critical)")
    expect(others).to_have_count(0, timeout=10_000)
    expect(rows.first).to_be_visible()
    page.wait_for_timeout((REFRESH + 2) * 1000)  # the next poll carries the choice too
    expect(page.locator("#incidents-severity-critical")).to_be_checked()
    expect(others).to_have_count(0)

    page.reload()  # a new page (or another device) starts with the kept choice
    expect(page.locator("#incidents-severity-critical")).to_be_checked(timeout=10_000)
    expect(rows.first).to_be_visible()
    expect(others).to_have_count(0)

    page.locator("#incidents-severity-critical").focus()
    with page.expect_response(lambda r: r.url.endswith("/widgets/incidents/severity")):
        page.keyboard.press("ArrowLeft")  # the radio group from the keyboard: back to "All"
    expect(page.locator("#incidents-severity-all")).to_be_checked()
    expect(others.first).to_be_visible(timeout=10_000)
    page.reload()
    expect(page.locator("#incidents-severity-all")).to_be_checked(timeout=10_000)


def test_a_choice_the_portal_cannot_keep_holds_on_the_page_and_says_so(
    open_page: OpenPage, live: str, problems: PageProblems
) -> None:
    """The portal's database away (its answer to the keeping POST: 503): the filter still cuts
    the card on this page, and a note under the card says it is not kept for other devices."""
    problems.allow_console(r"status of 503|Error Code 503 from /widgets/incidents/severity")  # browser, htmx
    page = open_page(f"{live}/")
    note = page.locator("#widget-incidents [data-choice-note]")
    expect(note).to_be_hidden()
    page.route("**/widgets/incidents/severity", lambda route: route.fulfill(status=503))
    with page.expect_response(lambda r: r.url.endswith("/widgets/incidents/severity")):
        page.locator("#incidents-severity-critical").click()
    expect(note).to_be_visible()
    expect(note).to_contain_text("this page only")
    expect(page.locator("#widget-incidents [data-live-region]")).to_contain_text("this page only")
    expect(page.locator("#widget-incidents .alert-row:not(.is-critical)")).to_have_count(0, timeout=10_000)
    page.unroute("**/widgets/incidents/severity")
    with page.expect_response(lambda r: r.url.endswith("/widgets/incidents/severity")) as kept:
        page.locator("#incidents-severity-all").click()  # kept again: the note goes
    assert kept.value.status == 204
    expect(note).to_be_hidden()
