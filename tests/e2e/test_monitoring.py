"""The metrics and incidents cards in the browser, on the real Prometheus and Alertmanager
(tests/support/peer_fixtures.py): a gauge changes state as the test moves the metric Prometheus
scrapes, an alert a rule fires moves from firing to resolved, and the severity filter cuts the
list, holds across polls and is kept for the person.

This module's `portal` stands in for the suite's (on the simulators), so `open_page` opens it:
both cards read the real peers, fresh for a second and polled every few seconds. Prometheus
scrapes the controlled target and evaluates the rules a test loads every second. The faults a
real server cannot show on demand are tested on the simulator, in tests/widgets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Response, expect

from simulators.base import SimServer

from ..support.alertmanager import AlertmanagerServer
from ..support.metrics_target import ControlledTarget
from ..support.monitoring import monitoring_config
from ..support.processes import wait_for
from ..support.prometheus import PrometheusServer
from .conftest import Portal, e2e_config, served_portal
from .helpers import SETTLED, OpenPage, PageProblems

pytestmark = [pytest.mark.peers, pytest.mark.timeout(240)]

CPU_METRIC = "portal_e2e_cpu_percent"
CPU = {
    "id": "cpu",
    "label": {"en": "Cluster CPU", "fr": "CPU du cluster"},
    "query": f'{CPU_METRIC}{{target="controlled"}}',
    "unit": "percent",
    "decimals": 1,
    "warn": 75,
    "critical": 90,
    "display": "gauge",
}
ALERT = "PortalE2EDiskFull"
# ms: a scrape or a rule's evaluation (every second), then the card's next poll (every 5 s) on a
# busy machine; `expect` returns as soon as the page shows it.
WAIT = 45_000


@pytest.fixture(scope="module")
def portal(
    kuma_server: SimServer,
    prometheus_with_rules: PrometheusServer,
    alertmanager: AlertmanagerServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Portal]:
    """The portal under gunicorn on the real Prometheus and Alertmanager, one gauge (CPU) on the
    metric the test sets; at the end, no CSP report and no error logged."""
    config = monitoring_config(
        e2e_config(kuma_server), prometheus_with_rules.url, alertmanager.url, gauges=[CPU]
    )
    with served_portal(config, tmp_path_factory.mktemp("portal-e2e-monitoring"), threads=8) as found:
        yield found


@pytest.fixture
def cpu(
    controlled_target: ControlledTarget, prometheus_with_rules: PrometheusServer
) -> Iterator[Callable[[float], None]]:
    """`cpu(value)`: the CPU gauge's metric, once Prometheus has scraped it; gone after the test."""

    def set_(value: float) -> None:
        controlled_target.set(CPU_METRIC, value)
        wait_for(
            lambda: prometheus_with_rules.value(CPU["query"]) == value,
            timeout=30,
            interval=0.25,
            what=f"Prometheus to scrape {CPU_METRIC}={value}",
        )

    yield set_
    controlled_target.clear(CPU_METRIC)


@pytest.fixture
def two_severities(rules: Callable[..., None]) -> None:
    """A critical and a warning alert that fire for the whole test."""
    rules(
        "e2e-severities",
        {"alert": "PortalE2ECritical", "expr": "vector(1)", "labels": {"severity": "critical"}},
        {"alert": "PortalE2EWarning", "expr": "vector(1)", "labels": {"severity": "warning"}},
    )


def _incidents_page(open_page: OpenPage) -> Page:
    """The dashboard, once the incidents card lists both alerts of `two_severities`."""
    page = open_page("/")
    for name in ("PortalE2ECritical", "PortalE2EWarning"):
        row = page.locator("#widget-incidents .alert-row", has=page.locator("bdi", has_text=name))
        expect(row).to_have_class(re.compile(r"\bis-firing\b"), timeout=WAIT)
    return page


def _is_poll(response: Response) -> bool:
    return urlsplit(response.url).path == "/widgets/incidents"


def test_a_gauge_changes_state_as_prometheus_answers(
    open_page: OpenPage, cpu: Callable[[float], None]
) -> None:
    cpu(48.5)
    page = open_page("/")
    gauge = page.locator("#gauge-cpu")
    expect(gauge.locator(".gauge__value")).to_have_text("48.5%", timeout=WAIT)
    expect(gauge).to_have_class(re.compile(r"\bis-ok\b"))
    expect(gauge.locator(".gauge-state")).to_have_text("OK")

    cpu(95.0)
    expect(gauge).to_have_class(re.compile(r"\bis-critical\b"), timeout=WAIT)
    expect(gauge.locator(".gauge-state")).to_have_text("Critical")
    expect(gauge.locator(".gauge__value")).to_have_text("95.0%")
    region = page.locator("#widget-metrics [data-live-region]")
    expect(region).to_contain_text("1 critical", timeout=WAIT)  # told to screen readers

    cpu(80.0)
    expect(gauge).to_have_class(re.compile(r"\bis-warn\b"), timeout=WAIT)
    expect(gauge.locator(".gauge-state")).to_have_text("Warning")
    expect(gauge.locator(".gauge__value")).to_have_text("80.0%")


def test_an_alert_moves_from_firing_to_resolved(
    open_page: OpenPage, rules: Callable[..., None], controlled_target: ControlledTarget
) -> None:
    metric = "portal_e2e_disk_full"
    controlled_target.set(metric, 0)
    rules(
        "e2e-disk-full",
        {
            "alert": ALERT,
            "expr": f'{metric}{{target="controlled"}} > 0.5',
            "labels": {"severity": "critical", "namespace": "gitlab"},
            "annotations": {"summary": "Disk full on {{ $labels.target }}"},
        },
    )
    try:
        page = open_page("/")
        row = page.locator("#widget-incidents .alert-row", has=page.locator("bdi", has_text=ALERT))
        expect(row).to_have_count(0)

        controlled_target.set(metric, 1)
        expect(row).to_have_class(re.compile(r"\bis-firing\b"), timeout=WAIT)
        expect(row.locator(".alert-state")).to_have_text("Firing")
        expect(row.locator(".alert-row__when")).to_contain_text("Firing since")
        expect(row.locator(".alert-row__summary")).to_have_text("Disk full on controlled")

        controlled_target.set(metric, 0)
        expect(row).to_have_class(re.compile(r"\bis-resolved\b"), timeout=WAIT)
        expect(row.locator(".alert-state")).to_have_text("Resolved")
        expect(row.locator(".alert-row__when")).to_contain_text("From ")
        expect(row.locator(".ribbon__firing")).to_have_count(1)

        # Resolved, its ribbon, labels and links wait behind "Details", which stays open
        # through the card's refreshes (here: another alert starts firing).
        expect(row.locator(".ribbon")).to_be_hidden()
        row.locator(".alert-row__toggle").click()
        expect(row.locator(".ribbon")).to_be_visible()
        expect(row.locator(".alert-label", has_text="namespace")).to_have_text("namespacegitlab")
        rules("e2e-neighbour", {"alert": "PortalE2ENeighbour", "expr": "vector(1)"})
        neighbour = page.locator(
            "#widget-incidents .alert-row", has=page.locator("bdi", has_text="PortalE2ENeighbour")
        )
        expect(neighbour).to_have_class(re.compile(r"\bis-firing\b"), timeout=WAIT)
        expect(row.locator(".alert-row__more")).to_have_attribute("open", "")
        expect(row.locator(".ribbon")).to_be_visible()

        # It fires anew (all shown, no "Details"), then resolves: its details open again, as the
        # person left them.
        controlled_target.set(metric, 1)
        expect(row).to_have_class(re.compile(r"\bis-firing\b"), timeout=WAIT)
        expect(row.locator(".alert-row__more")).to_have_count(0)
        controlled_target.set(metric, 0)
        expect(row).to_have_class(re.compile(r"\bis-resolved\b"), timeout=WAIT)
        expect(row.locator(".alert-row__more")).to_have_attribute("open", "")
    finally:
        controlled_target.clear(metric)


@pytest.mark.usefixtures("two_severities")
def test_the_severity_filter_cuts_holds_and_is_kept(open_page: OpenPage) -> None:
    page = _incidents_page(open_page)
    rows = page.locator("#widget-incidents .alert-row")
    others = page.locator("#widget-incidents .alert-row:not(.is-critical)")

    with page.expect_response(lambda r: r.url.endswith("/widgets/incidents/severity")) as kept:
        page.locator("#incidents-severity-critical").click()  # its pill, as a person clicks it
    assert kept.value.status == 204  # kept for this person, in the portal's database
    expect(page.locator("#incidents-severity-critical")).to_be_checked(timeout=WAIT)
    expect(others).to_have_count(0, timeout=WAIT)
    expect(rows.first).to_be_visible()
    # Said to a screen reader too: the card's summary (what fires) does not change with a filter.
    shown = rows.count()
    expect(page.locator("#widget-incidents [data-live-region]")).to_have_text(
        f"{shown} alert shown" if shown == 1 else f"{shown} alerts shown"
    )
    with page.expect_response(_is_poll, timeout=WAIT):  # the next poll carries the choice too
        pass
    page.wait_for_function(SETTLED)
    expect(page.locator("#incidents-severity-critical")).to_be_checked()
    expect(others).to_have_count(0)

    page.reload()  # a new page (or another device) starts with the kept choice
    expect(page.locator("#incidents-severity-critical")).to_be_checked(timeout=WAIT)
    expect(rows.first).to_be_visible()
    expect(others).to_have_count(0)
    # ... and says so, with what it hides that fires now: a warning.
    filtered = page.locator("#widget-incidents .incidents-filtered.is-hiding")
    expect(filtered).to_contain_text("Only critical alerts are shown")
    expect(filtered).to_contain_text(re.compile(r"alerts? of (another|other) severit(y is|ies are) firing"))

    page.locator("#incidents-severity-critical").focus()
    with page.expect_response(lambda r: r.url.endswith("/widgets/incidents/severity")):
        page.keyboard.press("ArrowLeft")  # the radio group from the keyboard: back to "All"
    expect(page.locator("#incidents-severity-all")).to_be_checked()
    expect(others.first).to_be_visible(timeout=WAIT)
    expect(filtered).to_have_count(0)
    page.reload()
    expect(page.locator("#incidents-severity-all")).to_be_checked(timeout=WAIT)

    # The notice's "Show all" is the "All" pill's choice: kept, and the card shows every alert.
    page.locator("#incidents-severity-critical").click()
    expect(filtered).to_be_visible(timeout=WAIT)
    with page.expect_response(lambda r: r.url.endswith("/widgets/incidents/severity")) as kept:
        filtered.get_by_role("button", name="Show all").click()
    assert kept.value.status == 204
    expect(page.locator("#incidents-severity-all")).to_be_checked()
    expect(page.locator("#incidents-severity-all")).to_be_focused()
    expect(others.first).to_be_visible(timeout=WAIT)
    expect(filtered).to_have_count(0)
    page.reload()
    expect(page.locator("#incidents-severity-all")).to_be_checked(timeout=WAIT)


@pytest.mark.usefixtures("two_severities")
def test_a_choice_the_portal_cannot_keep_holds_on_the_page_and_says_so(
    open_page: OpenPage, problems: PageProblems
) -> None:
    """The portal's database away (its answer to the keeping POST: 503): the filter still cuts
    the card on this page, and a note under the card says it is not kept for other devices."""
    problems.allow_console(r"status of 503|Error Code 503 from /widgets/incidents/severity")  # browser, htmx
    page = _incidents_page(open_page)
    note = page.locator("#widget-incidents [data-choice-note]")
    expect(note).to_be_hidden()
    page.route("**/widgets/incidents/severity", lambda route: route.fulfill(status=503))
    with page.expect_response(lambda r: r.url.endswith("/widgets/incidents/severity")):
        page.locator("#incidents-severity-critical").click()
    expect(note).to_be_visible()
    expect(note).to_contain_text("this page only")
    expect(page.locator("#widget-incidents [data-live-region]")).to_contain_text("this page only")
    expect(page.locator("#widget-incidents .alert-row:not(.is-critical)")).to_have_count(0, timeout=WAIT)
    page.unroute("**/widgets/incidents/severity")
    with page.expect_response(lambda r: r.url.endswith("/widgets/incidents/severity")) as kept:
        page.locator("#incidents-severity-all").click()  # kept again: the note goes
    assert kept.value.status == 204
    expect(note).to_be_hidden()


@pytest.mark.usefixtures("two_severities")
def test_a_critical_alert_firing_is_said_as_critical(open_page: OpenPage) -> None:
    """The incidents card's live region said "2 firing now": a critical alert sounded like a
    warning, and then did not say which. Said when it starts firing; here, as the card states it
    after its first answer."""
    page = _incidents_page(open_page)
    content = page.locator("#widget-incidents .widget-content")  # its data-announce: what is said
    expect(content).to_have_attribute(
        "data-announce", re.compile(r"^Incidents: 2 firing now \(1 critical: PortalE2ECritical\), ")
    )
