"""The incidents card: its Alertmanager client and timeline, and the card against a real Prometheus
evaluating rules the test loads (every second) and sending to a real Alertmanager.

Each test names its own alerts (Prometheus and Alertmanager live for the whole session) and
removes its rules afterwards.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import yaml
from flask import Flask
from flask.testing import FlaskClient
from pydantic import ValidationError

from portal import create_app
from portal.caching.stores import LocalStore
from portal.upstreams.http import HttpLimits
from portal.web.word_breaks import word_breaks
from portal.widgets.incidents.client import AlertmanagerClient, AlertmanagerState, HeldAlert, Silence
from portal.widgets.incidents.memory import MAX_REMEMBERED, HeldMemory
from portal.widgets.incidents.timeline import (
    DAY,
    History,
    expand,
    fetch_history,
    firings_of,
    incidents,
    intervals,
    triage,
)
from portal.widgets.incidents.widget import IncidentsSettings, severity_rank
from portal.widgets.metrics.client import ActiveAlert, AlertRule, PrometheusClient, Series
from simulators import prometheus as simulated
from simulators.base import SimServer

from ..conftest import SECRET
from ..support.alertmanager import AlertmanagerServer
from ..support.metrics_target import ControlledTarget
from ..support.monitoring import alert_row, card, monitoring_config
from ..support.processes import free_port, wait_for
from ..support.prometheus import PrometheusServer
from ..support.spoken import announced, shown
from ..support.taiga_portal import ORIGIN, csrf_token

AM = "http://alertmanager.test"

# --- the client and the timeline, against recorded answers ---------------------------------------


@responses.activate
def test_alertmanager_client_reads_silenced_alerts_and_their_silences(
    fixture_json: Callable[[str], Any],
) -> None:
    responses.get(f"{AM}/api/v2/alerts", json=fixture_json("incidents/am-alerts.json"))
    responses.get(f"{AM}/api/v2/silences", json=fixture_json("incidents/am-silences.json"))
    state = AlertmanagerClient(requests.Session(), AM, {}, HttpLimits(timeout=2)).state()
    held = {a.labels["alertname"]: a for a in state.alerts}
    silenced = held["PortalCaptureWarning"]
    assert silenced.state == "suppressed" and silenced.fingerprint == "8f4bc1b67ab9c8c5"
    (silence_id,) = silenced.silenced_by
    assert state.silences[silence_id].created_by == "alice"
    assert state.silences[silence_id].comment == "maintenance window"
    assert held["PortalCaptureCritical"].state == "active" and not held["PortalCaptureCritical"].silenced_by
    assert held["PortalCaptureCritical"].generator_url.startswith("http://127.0.0.1:")


def test_firing_intervals_follow_the_recipe() -> None:
    points = [(100.0, 1.0), (110.0, 1.0), (120.0, 1.0), (200.0, 1.0), (210.0, 1.0)]
    spans, still = intervals(points, step=10, end=210)
    assert spans == ((90.0, 120.0), (190.0, 210.0)) and still
    assert intervals(points, step=10, end=300)[1] is False
    assert intervals([], step=10, end=0) == ((), False)


def test_history_and_firing_now_make_one_row_per_alert_newest_first() -> None:
    labels = {"alertname": "Disk", "severity": "warning", "instance": "a"}
    series = [
        Series({"__name__": "ALERTS", "alertstate": "firing", **labels}, ((1000.0, 1.0), (1010.0, 1.0)))
    ]
    other = {"alertname": "Cpu", "severity": "critical"}
    series.append(
        Series({"__name__": "ALERTS", "alertstate": "firing", **other}, ((1500.0, 1.0), (2000.0, 1.0)))
    )
    rule = AlertRule("g", "Disk", "disk > 1", 0, {}, {"summary": "Disk full on {{ $labels.instance }}"}, "ok")
    history = History(0.0, 2000.0, 10.0, firings_of(series, 10.0, 2000.0), (rule,))
    active = [ActiveAlert(other, {"summary": "CPU hot"}, "firing", 1600.0, 1.0)]
    cpu, disk = incidents(history, active, None, now=2030.0)
    assert (cpu.alertname, cpu.firing, cpu.end, cpu.start) == ("Cpu", True, None, 1600.0)  # activeAt, exact
    assert cpu.summary == "CPU hot"
    assert (disk.alertname, disk.firing, disk.intervals) == ("Disk", False, ((990.0, 1010.0),))
    assert disk.summary == "Disk full on a"  # the rule's template, its labels filled in
    assert expand("{{ $value }} left", {}) is None  # a value is not known once resolved: not shown
    assert incidents(history, active, None, now=2030.0, excluded=frozenset({"Cpu"}))[0].alertname == "Disk"


def test_an_alert_history_sees_firing_is_not_called_resolved_by_an_older_list_of_active_alerts() -> None:
    labels = {"alertname": "Disk", "severity": "warning"}
    points = ((1990.0, 1.0), (2000.0, 1.0))
    series = [Series({"__name__": "ALERTS", "alertstate": "firing", **labels}, points)]
    history = History(0.0, 2000.0, 10.0, firings_of(series, 10.0, 2000.0), ())
    # Firing at history's last step; the active alerts were read before that step: still firing.
    (row,) = incidents(history, [], None, now=2005.0, active_as_of=1995.0)
    assert (row.firing, row.end, row.intervals) == (True, None, ((1980.0, 2005.0),))
    (row,) = incidents(history, None, None, now=2005.0)  # the active alerts could not be read
    assert row.firing
    # Read after history's last step and not among them: it has resolved since.
    (row,) = incidents(history, [], None, now=2005.0, active_as_of=2003.0)
    assert (row.firing, row.end) == (False, 2000.0)


def test_an_alert_firing_for_days_is_said_since_it_began_and_drawn_over_the_day() -> None:
    """The ribbon is the window's; the text's start is Prometheus' activeAt (plus the rule's `for`)."""
    now = 10 * DAY
    labels = {"alertname": "Disk", "severity": "warning"}
    points = tuple((t, 1.0) for t in range(int(now - DAY), int(now) + 1, 60))
    series = [Series({"__name__": "ALERTS", "alertstate": "firing", **labels}, points)]
    rule = AlertRule("g", "Disk", "disk > 1", 600.0, {}, {}, "ok")
    history = History(now - DAY, now, 60.0, firings_of(series, 60.0, now), (rule,))
    began = now - 3 * DAY
    active = [ActiveAlert(labels, {}, "firing", began - 600.0, 1.0)]
    (row,) = incidents(history, active, None, now=now + 5, active_as_of=now + 1)
    assert row.since == began and row.intervals == ((now + 5 - DAY, now + 5),)
    # Without activeAt, Alertmanager's startsAt says it.
    held = HeldAlert(labels, "f", "active", (), (), began, "")
    undated = [ActiveAlert(labels, {}, "firing", None, 1.0)]
    (row,) = incidents(history, undated, AlertmanagerState((held,), {}), now=now + 5, active_as_of=now + 1)
    assert row.since == began


def test_two_rules_of_one_name_each_give_their_own_for_summary_and_source() -> None:
    """A warning without `for` and a critical with `for: 10m`, both named DiskSpace."""
    warning = AlertRule(
        "g", "DiskSpace", "disk > 80", 0.0, {"severity": "warning"}, {"summary": "Disk 80%"}, "ok"
    )
    critical = AlertRule(
        "g", "DiskSpace", "disk > 95", 600.0, {"severity": "critical"}, {"summary": "Disk 95%"}, "ok"
    )
    now = 5000.0
    labels = [
        {"alertname": "DiskSpace", "severity": level, "instance": "a"} for level in ("warning", "critical")
    ]
    series = [
        Series({"__name__": "ALERTS", "alertstate": "firing", **one}, ((1000.0, 1.0),)) for one in labels
    ]
    firing = [
        Series({"__name__": "ALERTS", "alertstate": "firing", **one}, ((4990.0, 1.0), (5000.0, 1.0)))
        for one in labels
    ]
    for rules in ((warning, critical), (critical, warning)):  # whichever Prometheus lists first
        resolved = incidents(
            History(0.0, now, 10.0, firings_of(series, 10.0, now), rules), [], None, now=now + 5
        )
        summaries = {row.labels["severity"]: (row.summary, row.rule) for row in resolved}
        assert summaries == {"warning": ("Disk 80%", warning), "critical": ("Disk 95%", critical)}
        active = [ActiveAlert(one, {}, "firing", 4000.0, 1.0) for one in labels]
        history = History(0.0, now, 10.0, firings_of(firing, 10.0, now), rules)
        since = {row.labels["severity"]: row.since for row in incidents(history, active, None, now=now + 5)}
        assert since == {"warning": 4000.0, "critical": 4600.0}  # activeAt plus its own rule's `for`


def _alert(name: str, severity: str, active_at: float) -> tuple[Series, ActiveAlert]:
    """An alert firing since `active_at` up to 2000: its history and its entry among the active ones."""
    labels = {"alertname": name, "severity": severity}
    points = tuple((t, 1.0) for t in range(int(active_at // 10 * 10) + 10, 2001, 10))
    return (
        Series({"__name__": "ALERTS", "alertstate": "firing", **labels}, points),
        ActiveAlert(labels, {}, "firing", active_at, 1.0),
    )


def test_live_alerts_come_first_most_severe_then_newest_then_muted_then_resolved() -> None:
    """An alert storm: the critical alerts lead, whatever fired since; silenced ones wait below."""
    firing = [
        _alert("OldCritical", "critical", 1000.0),
        _alert("NewCritical", "critical", 1800.0),
        _alert("NewestWarning", "warning", 1950.0),
        _alert("NewestInfo", "info", 1960.0),
        _alert("SilencedCritical", "critical", 1970.0),
        _alert("InhibitedWarning", "warning", 1500.0),
    ]
    resolved = Series(
        {"__name__": "ALERTS", "alertstate": "firing", "alertname": "Resolved", "severity": "critical"},
        ((1990.0, 1.0),),
    )
    history = History(0.0, 2000.0, 10.0, firings_of([s for s, _ in firing] + [resolved], 10.0, 2000.0), ())
    held = (
        HeldAlert(
            {"alertname": "SilencedCritical", "severity": "critical"},
            "f1",
            "suppressed",
            ("s1",),
            (),
            None,
            "",
        ),
        HeldAlert(
            {"alertname": "InhibitedWarning", "severity": "warning"},
            "f2",
            "suppressed",
            (),
            ("f0",),
            None,
            "",
        ),
    )
    rows = incidents(
        history, [a for _, a in firing], AlertmanagerState(held, {}), now=2005.0, active_as_of=2003.0
    )
    ordered = [row.alertname for row in triage(rows, severity_rank(IncidentsSettings()))]
    assert ordered == [
        "NewCritical",
        "OldCritical",
        "NewestWarning",
        "NewestInfo",
        "SilencedCritical",
        "InhibitedWarning",
        "Resolved",
    ]


def test_an_alert_only_alertmanager_holds_is_a_row_and_prometheus_own_are_not_twice() -> None:
    """Loki's ruler, another Prometheus or a script post alerts to Alertmanager too: someone is
    paged for them, and the card said nothing. Alertmanager's copy of this Prometheus' alerts
    (with its external labels added) is still one row."""
    firing = [_alert("DiskFull", "critical", 1000.0)]
    rule = AlertRule("disks", "DiskFull", "disk > 0.9", 0.0, {}, {}, "ok")
    history = History(0.0, 2000.0, 10.0, firings_of([s for s, _ in firing], 10.0, 2000.0), (rule,))
    held = (
        HeldAlert(
            {"alertname": "DiskFull", "severity": "critical", "cluster": "prod"},
            "f1",
            "active",
            (),
            (),
            1000.0,
            "",
        ),
        HeldAlert(
            {"alertname": "DiskFull", "severity": "warning", "cluster": "prod"},
            "f2",
            "active",
            (),
            (),
            1500.0,
            "",
        ),
        HeldAlert(
            {"alertname": "LokiErrorBurst", "severity": "critical", "namespace": "gitlab"},
            "f3",
            "suppressed",
            ("s1",),
            (),
            1200.0,
            "http://127.0.0.1:3100/loki/explore",
            {"summary": "500s in the GitLab logs", "runbook_url": "https://runbooks.example/loki"},
        ),
    )
    silence = Silence("s1", "active", "marie", "on it", 1300.0, 9000.0)
    rows = incidents(history, [a for _, a in firing], AlertmanagerState(held, {"s1": silence}), now=2005.0)
    assert sorted(row.alertname for row in rows) == ["DiskFull", "LokiErrorBurst"]  # a rule's name: its own
    loki = next(row for row in rows if row.alertname == "LokiErrorBurst")
    assert loki.firing and loki.elsewhere and loki.since == 1200.0 and loki.intervals == ((1200.0, 2005.0),)
    assert (loki.summary, loki.runbook) == ("500s in the GitLab logs", "https://runbooks.example/loki")
    assert loki.silenced and loki.silences == (silence,) and loki.rule is None
    assert not next(row for row in rows if row.alertname == "DiskFull").elsewhere
    # Prometheus' rules not read (yet, or at all): whose alerts they are is not known; none is
    # said to come from elsewhere.
    assert incidents(None, None, AlertmanagerState(held, {}), now=2005.0) == []
    excluded = incidents(
        history, None, AlertmanagerState(held, {}), now=2005.0, excluded=frozenset({"LokiErrorBurst"})
    )
    assert [row.alertname for row in excluded] == ["DiskFull"]  # widgets.incidents.exclude holds for them too


class _BrokenStore(LocalStore):
    def get(self, key: str) -> Any:
        raise ConnectionError("the store is down")


def test_an_alert_alertmanager_dropped_stays_resolved_for_the_day_as_the_portal_saw_it() -> None:
    """Alertmanager drops an alert once it resolves: Loki's alert went from the card the moment
    it ended. The reads of the day are remembered in the shared store: an alert seen held then
    missing is resolved, ending when it was last seen, until a day after; this Prometheus' own
    alerts (their history is Prometheus') are never added; a store that fails costs the memory
    only."""
    loki = HeldAlert(
        {"alertname": "LokiErrorBurst", "severity": "critical"},
        "f3",
        "suppressed",
        ("s1",),
        (),
        1200.0,
        "http://127.0.0.1:3100/loki/explore",
        {"summary": "500s in the GitLab logs"},
    )
    disk = HeldAlert({"alertname": "DiskFull", "severity": "warning"}, "f2", "active", (), (), 1500.0, "")
    rule = AlertRule("disks", "DiskFull", "disk > 0.9", 0.0, {}, {}, "ok")
    history = History(0.0, 3000.0, 10.0, (), (rule,))
    memory = HeldMemory(LocalStore())
    seen = memory.keep(AlertmanagerState((loki, disk), {}), now=2000.0)
    assert seen.gone == ()
    later = memory.keep(AlertmanagerState((), {}), now=3000.0)  # both resolved since
    assert [(one.alert.fingerprint, one.last_seen) for one in later.gone] == [("f2", 2000.0), ("f3", 2000.0)]
    assert later.gone[1].alert.silenced_by == ()  # its silence ended with it
    rows = incidents(history, [], later, now=3000.0)
    assert [row.alertname for row in rows] == ["LokiErrorBurst"]  # DiskFull: a rule of this Prometheus
    ended = rows[0]
    assert not ended.firing and ended.elsewhere and not ended.silenced
    assert (ended.since, ended.end, ended.intervals) == (1200.0, 2000.0, ((1200.0, 2000.0),))
    assert ended.summary == "500s in the GitLab logs" and ended.held is not None
    assert ended.held.generator_url == "http://127.0.0.1:3100/loki/explore"  # its source, still
    again = memory.keep(AlertmanagerState((loki,), {}), now=3500.0)  # it fires again: one row, firing
    assert [one.alert.fingerprint for one in again.gone] == ["f2"]
    assert [row.firing for row in incidents(history, [], again, now=3500.0)] == [True]
    day_after = memory.keep(AlertmanagerState((), {}), now=3500.0 + DAY + 1)
    assert day_after.gone == () and incidents(history, [], day_after, now=3500.0 + DAY + 1) == []
    untouched = AlertmanagerState((loki,), {})
    assert HeldMemory(_BrokenStore()).keep(untouched, now=4000.0) is untouched
    storm = tuple(replace(disk, fingerprint=f"s{n:04d}") for n in range(MAX_REMEMBERED + 5))
    memory.keep(AlertmanagerState(storm, {}), now=5000.0)
    assert len(memory.keep(AlertmanagerState((), {}), now=5001.0).gone) == MAX_REMEMBERED  # bounded


# --- the card, against the real Prometheus and Alertmanager ------------------------------------------


@pytest.fixture
def incidents_app(
    portal_config: dict[str, Any], prometheus_with_rules: PrometheusServer, alertmanager: AlertmanagerServer
) -> Callable[..., Flask]:
    def build(prometheus: str | None = None, alertmanager_url: str | None = None, **settings: Any) -> Flask:
        config = monitoring_config(
            portal_config,
            prometheus or prometheus_with_rules.url,
            alertmanager_url or alertmanager.url,
            **settings,
        )
        return create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})

    return build


def _as(app: Flask, username: str) -> FlaskClient:
    """A browser of the demo person `username`."""
    client = app.test_client()
    assert client.get(f"/auth/demo-user/{username}").status_code == 303
    return client


def _above(
    name: str, metric: str, threshold: float, labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    """An alerting rule that fires while the controlled target's `metric` is above `threshold`."""
    expr = f'{metric}{{target="controlled"}} > {threshold}'
    return {"alert": name, "expr": expr, "labels": labels, "annotations": annotations}


def _card_when(client: FlaskClient, alertname: str, state: str) -> str:
    """The card once the row of `alertname` has the class `state` ("is-firing", "is-resolved")."""
    return card(client, "incidents", lambda h: state in (alert_row(h, alertname) or ""), timeout=30)


def _row(html: str, alertname: str) -> str:
    row = alert_row(html, alertname)
    assert row is not None, f"no row for {alertname} in:\n{html}"
    return row


@pytest.mark.peers
@pytest.mark.timeout(180)
def test_a_rule_that_fires_then_resolves_shows_as_resolved_with_its_duration_and_ribbon(
    incidents_app: Callable[..., Flask],
    rules: Callable[..., None],
    controlled_target: ControlledTarget,
    prometheus_with_rules: PrometheusServer,
) -> None:
    metric = "portal_test_incident_value"
    controlled_target.set(metric, 0)
    rules(
        "incident-toggle",
        _above(
            "PortalIncidentToggled",
            metric,
            0.5,
            {"severity": "critical", "namespace": "platform"},
            {"summary": "Toggled on {{ $labels.target }}", "description": "Value {{ $value }}"},
        ),
    )
    client = incidents_app().test_client()
    try:
        controlled_target.set(metric, 1)
        # The day's history may show the alert firing a poll before Prometheus' alerts list does
        # (two parts, fetched apart): the row fires at once, with the rule's summary expanded by
        # the portal, and gains the description Prometheus expands ($value) once the list has it.
        html = card(
            client,
            "incidents",
            lambda h: "Value 1" in (alert_row(h, "PortalIncidentToggled") or ""),
            timeout=30,
        )
        row = _row(html, "PortalIncidentToggled")
        assert "is-firing" in row and ">Firing</span>" in row and "Firing since" in row
        assert "Toggled on controlled" in row  # expanded by Prometheus
        assert ">Critical</span>" in row and "#octagon" in row
        assert re.search(
            r'<span class="alert-label__name">namespace</span><bdi class="alert-label__value">platform', row
        )
        assert 'href="http' in row and "In Alertmanager" in row
        assert "<details" not in row  # a firing alert is shown in full
        assert 'data-attention="critical"' in html  # the tab's icon gets its red dot (portal.js)
        # and a person who asked for it is notified (portal.js), in words of their language
        alarm = r'data-alarm="[^"]+" data-alarm-text="Critical · PortalIncidentToggled — Toggled on'
        assert re.search(alarm, row), row

        controlled_target.set(metric, 0)
        html = _card_when(client, "PortalIncidentToggled", "is-resolved")
    finally:
        controlled_target.clear(metric)
    row = _row(html, "PortalIncidentToggled")
    assert "data-alarm" not in row  # resolved: no longer news
    assert ">Resolved</span>" in row
    when = re.search(r"From (.+?) to (.+?) \(([^)]+)\)", row)
    assert when, row
    assert re.fullmatch(r"\d+\s(sec|min)", when.group(3).replace("\xa0", " ")), when.group(3)
    assert "Toggled on controlled" in row and "Value" not in row  # the template needs a value: left out
    ribbon = re.findall(r'<rect class="ribbon__firing is-critical" x="([\d.]+)" y="1" width="([\d.]+)"', row)
    assert len(ribbon) == 1 and float(ribbon[0][0]) > 1400  # in the last minutes of the day
    assert 'aria-label="Fired 1 time in the last 24 hours: ' in row
    # Resolved: what, when and how often are said; the ribbon, labels and links open on demand.
    shown, details = row.split('<details class="alert-row__more">')
    assert "Toggled on controlled" in shown and "From " in shown and "ribbon" not in shown
    assert "ribbon__firing" in details and "alert-label__value" in details and "In Alertmanager" in details
    assert re.search(r"Incidents: \d+ firing now, \d+ in the last 24 hours", html)
    # Read again seconds later, the day's history gives the same start and end: Prometheus is
    # asked for the same instants (multiples of the step), not instants that follow the clock.
    prometheus = PrometheusClient(requests.Session(), prometheus_with_rules.url, {}, HttpLimits(timeout=5))

    def spans() -> tuple[tuple[float, float], ...]:
        history = fetch_history(prometheus, 5.0)
        assert history.start % history.step == 0 and history.end % history.step == 0
        (firing,) = (f for f in history.firings if f.labels.get("alertname") == "PortalIncidentToggled")
        return firing.intervals

    first = spans()
    time.sleep(2.3)
    assert spans() == first


def _pill(html: str, level: str) -> str:
    """The severity filter's pill of `level`, its words without markup."""
    found = re.search(rf'for="incidents-severity-{level}">(.*?)</label>', html, re.S)
    assert found, html
    return re.sub(r"<[^>]+>", "", found.group(1))


def _names(html: str, prefix: str) -> list[str]:
    """The alert names of the card's rows that start with `prefix`, in the card's order."""
    return [
        n.replace("<wbr>", "")
        for n in re.findall(r"<bdi>(.*?)</bdi></h4>", html)
        if n.replace("<wbr>", "").startswith(prefix)
    ]


@pytest.mark.peers
@pytest.mark.timeout(150)
def test_in_an_alert_storm_the_live_critical_alert_leads_and_the_rest_is_a_link_away(
    incidents_app: Callable[..., Flask],
    rules: Callable[..., None],
    prometheus_with_rules: PrometheusServer,
    alertmanager: AlertmanagerServer,
) -> None:
    """The critical alert fires first, then warnings pile up: newest-first alone would cut it."""
    critical = {"severity": "critical", "namespace": "storm"}
    silence = alertmanager.create_silence({"alertname": "PortalStormSilenced"})
    try:
        rules(
            "incident-storm-critical",
            {"alert": "PortalStormCritical", "expr": "vector(1)", "labels": critical},
            {"alert": "PortalStormSilenced", "expr": "vector(1)", "labels": critical},
        )
        wait_for(
            lambda: alertmanager.alerts(alertname="PortalStormSilenced"),
            timeout=20,
            what="the silenced alert",
        )
        time.sleep(1.5)  # the warnings start later: the newest rows
        warnings = [
            {"alert": f"PortalStormWarning{k}", "expr": "vector(1)", "labels": {"severity": "warning"}}
            for k in range(4)
        ]
        rules("incident-storm-warnings", *warnings)
        wait_for(
            lambda: prometheus_with_rules.alert_state("PortalStormWarning3") == "firing",
            timeout=20,
            what="the warnings to fire",
        )

        def ready(html: str) -> bool:
            return all(f"PortalStormWarning{k}" in html.replace("<wbr>", "") for k in range(4)) and (
                "Silenced by tests" in (alert_row(html, "PortalStormSilenced") or "")
            )

        every = card(incidents_app().test_client(), "incidents", ready, timeout=30)
        names = _names(every, "PortalStorm")
        assert names[0] == "PortalStormCritical", names
        assert sorted(names[1:5]) == [f"PortalStormWarning{k}" for k in range(4)], names
        assert names[5] == "PortalStormSilenced", names  # firing, but nobody is paged: after the live ones
        # Five rows at most: the live critical alert stays; the sentence under the list leads to the rest.
        cut = card(incidents_app(max_alerts=5).test_client(), "incidents", "PortalStormWarning3", timeout=30)
        assert _names(cut, "PortalStorm") == names[:5]
        more = re.search(r'<p class="alert-list__more">(.*?)</p>', cut, re.S)
        assert more and re.search(r"\d+ more alerts? (is|are) not shown\.", more.group(1))
        assert f'href="{alertmanager.url}/#/alerts?silenced=true&amp;inhibited=true"' in more.group(1)
        assert "Every firing alert in Alertmanager" in more.group(1)
    finally:
        alertmanager.expire_silence(silence)


def _rows(html: str, alertname: str) -> dict[str, str]:
    """The rows of the alerts named `alertname`, by their severity's level."""
    found = re.findall(r'<li class="alert-row is-(\w+) .*?</li>\s*(?=<li class="alert-row|</ol>)', html, re.S)
    rows = re.findall(r'<li class="alert-row .*?</li>\s*(?=<li class="alert-row|</ol>)', html, re.S)
    return {
        level: row
        for level, row in zip(found, rows, strict=True)
        if f"<bdi>{alertname}</bdi>" in row.replace("<wbr>", "")
    }


@pytest.mark.peers
@pytest.mark.timeout(150)
def test_two_rules_of_one_name_keep_their_own_summary_and_source(
    portal_config: dict[str, Any],
    prometheus_with_rules: PrometheusServer,
    rules: Callable[..., None],
    controlled_target: ControlledTarget,
) -> None:
    """DiskSpace at 80 % (warning) and at 95 % (critical, with its own `for`): once resolved, each
    row has its own rule's summary and expression (the card read one rule by the name alone)."""
    metric = "portal_test_twin_value"
    controlled_target.set(metric, 0)
    rules(
        "incident-twins",
        _above(
            "PortalIncidentTwin",
            metric,
            0.8,
            {"severity": "warning"},
            {"summary": "Twin above 80 on {{ $labels.target }}"},
        ),
        {
            **_above(
                "PortalIncidentTwin",
                metric,
                0.95,
                {"severity": "critical"},
                {"summary": "Twin above 95 on {{ $labels.target }}"},
            ),
            "for": "1s",
        },
    )
    config = monitoring_config(portal_config, prometheus_with_rules.url, None)  # links from the rules
    client = create_app(
        {"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}}
    ).test_client()
    try:
        controlled_target.set(metric, 1)
        card(
            client,
            "incidents",
            lambda h: all("is-firing" in r for r in _rows(h, "PortalIncidentTwin").values())
            and len(_rows(h, "PortalIncidentTwin")) == 2,
            timeout=30,
        )
        controlled_target.set(metric, 0)
        html = card(
            client,
            "incidents",
            lambda h: len(_rows(h, "PortalIncidentTwin")) == 2
            and all("is-resolved" in r for r in _rows(h, "PortalIncidentTwin").values()),
            timeout=30,
        )
    finally:
        controlled_target.clear(metric)
    twins = _rows(html, "PortalIncidentTwin")
    assert "Twin above 80 on controlled" in twins["warning"] and "Twin above 95" not in twins["warning"]
    assert "Twin above 95 on controlled" in twins["critical"] and "Twin above 80" not in twins["critical"]
    assert "%3E%200.8&amp;g0.tab" in twins["warning"], twins["warning"]  # its own expression in Prometheus
    assert "%3E%200.95&amp;g0.tab" in twins["critical"], twins["critical"]


@pytest.mark.peers
@pytest.mark.timeout(150)
def test_an_alert_runbook_is_a_link_on_its_firing_row_and_in_its_details_once_resolved(
    incidents_app: Callable[..., Flask], rules: Callable[..., None], controlled_target: ControlledTarget
) -> None:
    """Prometheus expands `runbook_url` while the alert fires; the card, from the rule, once resolved."""
    metric = "portal_test_runbook_value"
    controlled_target.set(metric, 0)
    runbook = {
        "summary": "Disk",
        "runbook_url": "https://runbooks.example.org/{{ $labels.target }}/disk?a=1&b=2",
    }
    rules("incident-runbook", _above("PortalIncidentRunbook", metric, 0.5, {"severity": "warning"}, runbook))
    client = incidents_app().test_client()
    link = '<a class="alert-row__runbook" href="https://runbooks.example.org/controlled/disk?a=1&amp;b=2"'
    try:
        controlled_target.set(metric, 1)
        row = _row(_card_when(client, "PortalIncidentRunbook", "is-firing"), "PortalIncidentRunbook")
        assert link in row and "<details" not in row and "<span>Runbook</span>" in row
        controlled_target.set(metric, 0)
        resolved = _card_when(client, "PortalIncidentRunbook", "is-resolved")
    finally:
        controlled_target.clear(metric)
    shown, details = _row(resolved, "PortalIncidentRunbook").split('<details class="alert-row__more">')
    assert link in details and "alert-row__runbook" not in shown
    french = card(client, "incidents", "PortalIncidentRunbook", language="fr")
    assert "<span>Procédure</span>" in _row(french, "PortalIncidentRunbook")


@pytest.mark.peers
@pytest.mark.timeout(120)
def test_a_silence_created_through_alertmanager_shows_as_silenced(
    incidents_app: Callable[..., Flask], rules: Callable[..., None], alertmanager: AlertmanagerServer
) -> None:
    rules(
        "incident-silenced",
        {"alert": "PortalIncidentSilenced", "expr": "vector(1)", "labels": {"severity": "warning"}},
    )
    wait_for(
        lambda: alertmanager.alerts(alertname="PortalIncidentSilenced"),
        timeout=20,
        what="the alert in Alertmanager",
    )
    silence = alertmanager.create_silence(
        {"alertname": "PortalIncidentSilenced"}, comment="<b>maintenance</b> \u202ewindow", created_by="alice"
    )
    try:
        client = incidents_app().test_client()
        html = card(
            client,
            "incidents",
            lambda h: "Silenced by alice" in (alert_row(h, "PortalIncidentSilenced") or ""),
            timeout=30,
        )
        row = _row(html, "PortalIncidentSilenced")
        # Its end in an hour: at a time, or on the next day after 23:00 in the portal's zone.
        assert "is-muted" in row and re.search(r"Silenced by alice until (?:[^<]+? at )?\d", row), row
        # Said in the row's head (without opening anything), and counted apart from the live alerts.
        head = row.split("</div>", 1)[0]
        assert '<span class="alert-state is-silenced">' in head and "<span>Silenced</span>" in head
        assert re.search(r"\(([^)]*, )?1 silenced\)", _pill(html, "warning")), _pill(html, "warning")
        assert re.search(
            r'data-announce="Incidents: \d+ firing now, 1 silenced or inhibited, \d+ in the', html
        )
        assert "&lt;b&gt;maintenance&lt;/b&gt; window" in row and "<b>" not in row  # no bidi override
        assert f"/#/silences/{silence}" in row
        # French: "jusqu’à 14:05" today, "jusqu’au 7 déc. à 01:17" another day (never a bare date).
        french = _row(
            card(client, "incidents", "PortalIncidentSilenced", language="fr"), "PortalIncidentSilenced"
        )
        assert re.search(r"Mise en silence par alice jusqu’(à \d\d:\d\d|au [^<]+? à \d\d:\d\d)", french)
        assert "1 en silence)" in _pill(  # invariable: the pill counts warnings, masculine in French
            card(client, "incidents", "PortalIncidentSilenced", language="fr"), "warning"
        )
    finally:
        alertmanager.expire_silence(silence)


@pytest.mark.peers
@pytest.mark.timeout(120)
def test_an_alert_inhibited_in_alertmanager_says_so_and_its_source_does_not(
    incidents_app: Callable[..., Flask], rules: Callable[..., None], alertmanager: AlertmanagerServer
) -> None:
    """Alertmanager inhibits the warning while the critical of the same namespace fires."""
    source, target = "PortalIncidentInhibitor", "PortalIncidentInhibited"
    alertmanager.inhibit(
        [
            {
                "source_matchers": [f'alertname="{source}"'],
                "target_matchers": [f'alertname="{target}"'],
                "equal": ["namespace"],
            }
        ]
    )
    try:
        rules(
            "incident-inhibit",
            {"alert": source, "expr": "vector(1)", "labels": {"severity": "critical", "namespace": "db"}},
            {"alert": target, "expr": "vector(1)", "labels": {"severity": "warning", "namespace": "db"}},
        )
        wait_for(
            lambda: any(a["status"]["inhibitedBy"] for a in alertmanager.alerts(alertname=target)),
            timeout=30,
            what="Alertmanager to inhibit the target alert",
        )
        client = incidents_app().test_client()
        html = card(
            client,
            "incidents",
            lambda h: "Inhibited by the alert" in (alert_row(h, target) or ""),
            timeout=30,
        )
        row = _row(html, target)
        assert "is-firing" in row and "is-muted" in row
        inhibited = re.search(r'<p class="alert-mute is-inhibited">.*?</p>', row, re.S)
        assert inhibited and f"<span>Inhibited by the alert {source}</span>" in inhibited.group(0)  # named
        assert "Silenced" not in row  # inhibited is not silenced
        head = row.split("</div>", 1)[0]
        assert '<span class="alert-state is-inhibited">' in head and "<span>Inhibited</span>" in head
        assert re.search(r"\(([^)]*, )?1 inhibited\)", _pill(html, "warning")), _pill(html, "warning")
        assert not re.search(r"\(([^)]*, )?1 inhibited\)", _pill(html, "critical"))  # the inhibitor is live
        inhibitor = _row(html, source)
        assert "is-firing" in inhibitor and "is-muted" not in inhibitor and "Inhibited" not in inhibitor
        french = _row(card(client, "incidents", target, language="fr"), target)
        assert f"Inhibée par l’alerte {source}" in french
    finally:
        alertmanager.inhibit([])


@pytest.mark.peers
def test_an_alert_posted_to_alertmanager_by_another_source_is_a_row_of_its_own(
    incidents_app: Callable[..., Flask], alertmanager: AlertmanagerServer
) -> None:
    """As Loki's ruler does: an alert in Alertmanager that no rule of this Prometheus makes. Once
    it resolves, Alertmanager drops it; the portal that saw it firing shows it resolved for the
    rest of the day (its row went at once), one that never saw it knows nothing of it."""
    name = "PortalLokiErrorBurst"
    alert = {
        "labels": {"alertname": name, "severity": "critical", "namespace": "gitlab"},
        "annotations": {
            "summary": "500s in the <b>GitLab</b> logs",
            "runbook_url": "https://runbooks.example/loki",
        },
        "generatorURL": "http://127.0.0.1:3100/explore?query=errors",
    }
    requests.post(f"{alertmanager.url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()
    watched = incidents_app()
    try:
        _posted_alert_row(watched.test_client(), name)
    finally:  # a live critical alert would lead other tests' cards
        alertmanager.resolve_alert(alert["labels"])
    resolved = _row(_card_when(watched.test_client(), name, "is-resolved"), name)
    assert "is-firing" not in resolved and "500s in the &lt;b&gt;GitLab&lt;/b&gt; logs" in resolved
    ended = re.search(r"it ended after ([^,<]+), when the portal last saw it firing", resolved)
    assert ended and f" to {ended.group(1)} (" in resolved, resolved  # "From 2:02 PM to 2:03 PM (1 min)"
    assert (
        '<a href="http://127.0.0.1:3100/explore?query=errors" rel="noopener">' in resolved
    )  # its source still
    french = _row(card(watched.test_client(), "incidents", name, language="fr"), name)
    assert "elle a pris fin après" in french
    client = incidents_app().test_client()  # a portal that never saw it firing: nothing to show
    card(client, "incidents", lambda h: "incidents-pill" in h and alert_row(h, name) is None, timeout=30)


def _posted_alert_row(client: FlaskClient, name: str) -> None:
    """The row of the alert another source posted, in both languages."""
    html = card(client, "incidents", lambda h: alert_row(h, name) is not None, timeout=30)
    row = _row(html, name)
    assert "is-firing" in row and "is-muted" not in row
    assert "500s in the &lt;b&gt;GitLab&lt;/b&gt; logs" in row  # text, as ever
    assert "Sent to Alertmanager by another source than this Prometheus" in row
    assert (
        '<a href="http://127.0.0.1:3100/explore?query=errors" rel="noopener">' in row and "Its source" in row
    )
    assert "Source in Prometheus" not in row and 'href="https://runbooks.example/loki"' in row
    assert re.search(r"\(([^)]*, )?[1-9]\d* firing", _pill(html, "critical")), _pill(html, "critical")
    french = _row(card(client, "incidents", name, language="fr"), name)
    assert "Envoyée à Alertmanager par une autre source" in french and "Sa source" in french


@pytest.mark.peers
@pytest.mark.timeout(120)
def test_alertmanager_down_keeps_prometheus_view_and_says_so(
    incidents_app: Callable[..., Flask], rules: Callable[..., None]
) -> None:
    rules(
        "incident-am-down",
        {"alert": "PortalIncidentNoAm", "expr": "vector(1)", "labels": {"severity": "info"}},
    )
    app = incidents_app(alertmanager_url=f"http://127.0.0.1:{free_port()}")
    html = card(
        app.test_client(),
        "incidents",
        lambda h: alert_row(h, "PortalIncidentNoAm") is not None and "cannot be reached" in h,
        timeout=30,
    )
    banner = re.search(r'<div class="stale-banner">.*?</div>\s*</div>', html, re.S)
    assert banner and "Alertmanager cannot be reached" in banner.group(0)
    assert "Silences and inhibitions are not shown." in banner.group(0) and "Prometheus" not in banner.group(
        0
    )
    assert "is-firing" in _row(html, "PortalIncidentNoAm")
    assert 'class="alert-list is-stale"' not in html  # Prometheus' data is fresh: not muted


@pytest.mark.peers
@pytest.mark.timeout(120)
def test_prometheus_down_keeps_the_last_alerts_marked_stale(
    incidents_app: Callable[..., Flask], tmp_path: Path
) -> None:
    rule_file = tmp_path / "always.yml"
    always = {"alert": "PortalIncidentOwnServer", "expr": "vector(1)", "labels": {"severity": "warning"}}
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "own", "interval": "1s", "rules": [always]}]}))
    (tmp_path / "prometheus").mkdir()
    own = PrometheusServer(tmp_path / "prometheus", rule_files=[rule_file]).start()
    try:
        client = incidents_app(prometheus=own.url).test_client()
        card(client, "incidents", lambda h: alert_row(h, "PortalIncidentOwnServer") is not None, timeout=30)
    finally:
        own.stop()
    html = card(client, "incidents", "Prometheus cannot be reached", timeout=30)
    assert 'class="widget-content is-stale"' in html and re.search(r"Data from <time", html)
    assert re.fullmatch(r"Incidents: [^.]*\. Data from [^,]+, Prometheus cannot be reached", announced(html))
    assert shown(html).count("Prometheus cannot be reached") == 1
    assert 'class="alert-list is-stale"' in html and alert_row(html, "PortalIncidentOwnServer")


@pytest.mark.peers
@pytest.mark.timeout(120)
def test_hostile_label_and_annotation_text_is_shown_as_text(
    incidents_app: Callable[..., Flask], rules: Callable[..., None]
) -> None:
    long_value = "x" * 5000
    rules(
        "incident-hostile",
        {
            "alert": "PortalIncidentHostile",
            "expr": "vector(1)",
            "labels": {
                "severity": "<img src=x onerror=alert(1)>",
                "namespace": '"><script>alert("ns")</script>',
                "pod": "\u202eexe.live\u202c \u05e9\u05dc\u05d5\u05dd",
                "instance": long_value,
            },
            "annotations": {
                "summary": '<script>alert("summary")</script>',
                "description": "\u05d4\u05ea\u05e8\u05d0\u05d4 " + "y" * 5000,
                "runbook_url": "javascript:alert(1)",
            },
        },
    )
    client = incidents_app().test_client()
    html = card(client, "incidents", lambda h: alert_row(h, "PortalIncidentHostile") is not None, timeout=30)
    row = _row(html, "PortalIncidentHostile")
    assert "<script>" not in html and "<img" not in html and "javascript:" not in html
    assert "alert-row__runbook" not in row  # a runbook that is not http(s) is no link
    assert "&lt;script&gt;alert(&#34;summary&#34;)&lt;/script&gt;" in row
    labels = row.replace("<wbr>", "")  # a label's value may break between its parts
    assert "&#34;&gt;&lt;script&gt;alert(&#34;ns&#34;)&lt;/<wbr>script&gt;" in row
    assert "&#34;&gt;&lt;script&gt;alert(&#34;ns&#34;)&lt;/script&gt;" in labels
    # its text as the characters it is: the bidi override, which would turn it round, dropped
    assert "exe.live \u05e9\u05dc\u05d5\u05dd" in labels and "\u202e" not in row and 'dir="auto"' in row
    assert long_value not in row and "y" * 5000 not in row  # cut to a readable length
    assert (
        "(&lt;img src=x onerror=alert(1)&gt;)" in row and ">Info" in row
    )  # an unknown severity: info, said as is
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "<script>alert" not in page
    status = client.get("/widgets/status", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "is-ok" in status


@pytest.mark.peers
@pytest.mark.timeout(120)
def test_the_severity_filter_is_cut_on_the_server_and_part_of_the_version(
    incidents_app: Callable[..., Flask], rules: Callable[..., None]
) -> None:
    rules(
        "incident-filter",
        {"alert": "PortalIncidentFilterCritical", "expr": "vector(1)", "labels": {"severity": "critical"}},
        {"alert": "PortalIncidentFilterWarning", "expr": "vector(1)", "labels": {"severity": "warning"}},
    )
    client = incidents_app().test_client()
    both = card(
        client,
        "incidents",
        lambda h: alert_row(h, "PortalIncidentFilterWarning") is not None
        and alert_row(h, "PortalIncidentFilterCritical") is not None,
        timeout=30,
    )
    critical = card(client, "incidents", "PortalIncidentFilterCritical", query="?severity=critical")
    assert alert_row(critical, "PortalIncidentFilterWarning") is None
    assert re.search(r'id="incidents-severity-critical"[^>]* checked', critical)
    assert "data-card-choice" in critical
    counts = re.search(
        r'for="incidents-severity-warning">.*?<span class="incidents-pill__count">(\d+)', critical, re.S
    )
    assert counts and int(counts.group(1)) >= 1  # the counts are of every alert, whatever is shown
    # A critical alert firing is named to a screen reader whatever the filter shows.
    warning = card(client, "incidents", "PortalIncidentFilterWarning", query="?severity=warning")
    assert alert_row(warning, "PortalIncidentFilterCritical") is None
    heard = announced(warning)
    assert re.search(r"\(\d+ critical: [^)]*PortalIncidentFilterCritical", heard), heard
    unknown = card(client, "incidents", "PortalIncidentFilterWarning", query="?severity=<script>")
    assert alert_row(unknown, "PortalIncidentFilterWarning") and re.search(
        r'id="incidents-severity-all"[^>]* checked', unknown
    )
    version = client.get("/widgets/incidents?severity=critical").headers["X-Widget-Version"]
    again = client.get("/widgets/incidents?severity=critical", headers={"X-Widget-Version": version})
    other = client.get("/widgets/incidents?severity=warning", headers={"X-Widget-Version": version})
    assert again.status_code in (200, 204) and other.status_code == 200
    assert "<script>" not in both


@pytest.mark.peers
@pytest.mark.timeout(120)
def test_the_severity_filter_is_kept_per_person_for_the_next_browser(
    incidents_app: Callable[..., Flask], rules: Callable[..., None]
) -> None:
    """Kept in the portal's database through the guard; another browser of the same person starts with it."""
    rules(
        "incident-keep",
        {"alert": "PortalIncidentKeepCritical", "expr": "vector(1)", "labels": {"severity": "critical"}},
        {"alert": "PortalIncidentKeepWarning", "expr": "vector(1)", "labels": {"severity": "warning"}},
    )
    app = incidents_app()
    camille = _as(app, "camille")
    html = card(camille, "incidents", "PortalIncidentKeepWarning", timeout=30)
    assert 'hx-post="/widgets/incidents/severity"' in html
    token = csrf_token(camille.get("/").get_data(as_text=True))
    url = "/widgets/incidents/severity"
    assert camille.post(url, data={"severity": "critical"}, headers={"Origin": ORIGIN}).status_code == 403
    refused = camille.post(url, data={"severity": "<b>"}, headers={"Origin": ORIGIN, "X-CSRFToken": token})
    assert refused.status_code == 403
    kept = camille.post(url, data={"severity": "critical"}, headers={"Origin": ORIGIN, "X-CSRFToken": token})
    assert kept.status_code == 204

    other_browser = card(_as(app, "camille"), "incidents", "PortalIncidentKeepCritical")
    assert 'id="incidents-severity-critical" hx-post' in other_browser
    assert re.search(r'id="incidents-severity-critical"[^>]* checked', other_browser)
    assert alert_row(other_browser, "PortalIncidentKeepWarning") is None
    # A filter kept from yesterday says it is on, and that it hides a warning firing now.
    said = re.search(r'<p class="incidents-filtered is-hiding">.*?</p>', other_browser, re.S)
    assert said, other_browser
    assert re.search(r"Only critical alerts are shown: \d+ alerts? of (another|other) severit", said.group())
    assert 'data-choose="incidents-severity-all"' in said.group()
    # What the card sends wins over what is kept ("All" chosen on this page), and others keep theirs.
    every = card(_as(app, "camille"), "incidents", "PortalIncidentKeepWarning", query="?severity=")
    assert alert_row(every, "PortalIncidentKeepCritical") is not None
    assert "incidents-filtered" not in every
    dominique = card(_as(app, "dominique"), "incidents", "PortalIncidentKeepWarning")
    assert re.search(r'id="incidents-severity-all"[^>]* checked', dominique)


@pytest.mark.peers
def test_without_alertmanager_the_card_shows_prometheus_view_alone(
    portal_config: dict[str, Any], prometheus_with_rules: PrometheusServer, rules: Callable[..., None]
) -> None:
    rules("incident-no-am", {"alert": "PortalIncidentPrometheusOnly", "expr": "vector(1)"})
    config = monitoring_config(portal_config, prometheus_with_rules.url, None)
    client = create_app(
        {"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}}
    ).test_client()
    html = card(
        client, "incidents", lambda h: alert_row(h, "PortalIncidentPrometheusOnly") is not None, timeout=30
    )
    assert 'class="widget-content is-ok"' in html  # no Alertmanager is no problem
    assert "Open Alertmanager" not in html and "In Alertmanager" not in html
    row = _row(html, "PortalIncidentPrometheusOnly")
    assert ">Info</span>" in row  # no severity label: the lowest level, said in words
    assert "/graph?g0.expr=vector%281%29&amp;g0.tab=1" in row  # the rule's expression in Prometheus


@pytest.fixture
def alertmanager_sim() -> Iterator[SimServer]:
    """Alertmanager's simulator, for the faults a real Alertmanager cannot show on demand."""
    prometheus, alertmanager, _ = simulated.make_servers()
    prometheus.start()
    alertmanager.start()
    yield alertmanager
    prometheus.stop()
    alertmanager.stop()


@pytest.mark.peers
@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("error500", "Alertmanager answered HTTP 500"),
        ("garbage", "Alertmanager returned a response that is not valid JSON"),
        ("unauthorized", "Alertmanager asks for a login the portal does not have (HTTP 401)"),
        ("timeout", "Alertmanager did not answer within 3 s"),
    ],
)
def test_an_alertmanager_fault_is_said_and_leaves_prometheus_view(
    incidents_app: Callable[..., Flask],
    rules: Callable[..., None],
    alertmanager_sim: SimServer,
    mode: str,
    said: str,
) -> None:
    rules("incident-am-fault", {"alert": "PortalIncidentAmFault", "expr": "vector(1)"})
    alertmanager_sim.set_fault(mode, seconds=6)
    client = incidents_app(alertmanager_url=alertmanager_sim.url).test_client()
    # Each parameter fires the alert anew (the earlier one is in the history, resolved).
    html = card(
        client,
        "incidents",
        lambda h: said in h and "is-firing" in (alert_row(h, "PortalIncidentAmFault") or ""),
        timeout=30,
    )
    assert (
        "is-firing" in _row(html, "PortalIncidentAmFault")
        and "Silences and inhibitions are not shown." in html
    )
    assert "<html>" not in html  # the upstream's body never reaches the card


@pytest.mark.peers
def test_alertmanager_failing_after_it_answered_says_its_silences_are_those_of_then(
    incidents_app: Callable[..., Flask], rules: Callable[..., None], alertmanager_sim: SimServer
) -> None:
    rules("incident-am-later", {"alert": "PortalIncidentAmLater", "expr": "vector(1)"})
    client = incidents_app(alertmanager_url=alertmanager_sim.url).test_client()
    card(
        client,
        "incidents",
        lambda h: "is-firing" in (alert_row(h, "PortalIncidentAmLater") or ""),
        timeout=30,
    )
    alertmanager_sim.set_fault("error500")
    try:
        html = card(client, "incidents", lambda h: "Alertmanager answered HTTP 500" in h, timeout=15)
        french = card(client, "incidents", "Alertmanager a renvoyé le code HTTP\u00a0500", language="fr")
    finally:
        alertmanager_sim.set_fault("none")
    banner = re.search(r'<div class="stale-banner">.*?</div>\s*</div>', html, re.S)
    assert banner, html
    # Its last answer is still used (the silences shown): said as of when, not "not shown".
    said = re.sub(r"\s+", " ", banner.group(0))
    assert re.search(
        r"Alertmanager answered HTTP 500\. The silences and inhibitions shown are those of ", said
    ), said
    assert "not shown" not in said
    # The time ends the sentence: no space before its full stop ("of 07:25.", "datent de 07:25.").
    for page in (html, french):
        text = re.sub(
            r"<[^>]+>", "", re.search(r'<div class="stale-banner">.*?</div>\s*</div>', page, re.S)[0]
        )
        assert re.search(r"(those of|datent de) \d{1,2}:\d\d(\u202f[AP]M)?\.\n", text), text


def _simulated_card(portal_config: dict[str, Any], alert: simulated.SimAlert, until: str) -> str:
    """The card (in English) on the simulators of the demo's world, `alert` added to it."""
    world = simulated.demo_world()
    world.add_alert(alert)
    prometheus, alertmanager, _ = simulated.make_servers(world)
    prometheus.start()
    alertmanager.start()
    try:
        config = monitoring_config(portal_config, prometheus.url, alertmanager.url)
        app = create_app({"TESTING": True, "PORTAL": config, "ENV": {"PORTAL_SECRET_KEY": SECRET}})
        return card(app.test_client(), "incidents", until)
    finally:
        prometheus.stop()
        alertmanager.stop()


def test_an_alert_firing_for_three_days_says_so_and_its_ribbon_fills_the_day(
    portal_config: dict[str, Any],
) -> None:
    """A real Prometheus cannot have fired an alert for three days on demand: its simulator has."""
    began = time.time() - 3 * DAY - 300  # minutes more: the card counts to the start of its minute
    alert = simulated.SimAlert(
        "PortalThreeDays",
        "critical",
        {},
        "summary",
        "",
        "vector(1)",
        duration=600,
        spans=[(began, simulated.INF)],
    )
    row = alert_row(_simulated_card(portal_config, alert, "PortalThreeDays"), "PortalThreeDays")
    assert row is not None and "is-firing" in row
    when = re.search(r"Firing since (.+?) at (.+?) \(([^)]+)\)", row.replace("\xa0", " "))
    assert when and when.group(3).startswith("3 days"), row  # not "1 day": the real start
    assert re.search(
        r'class="ribbon__firing is-critical" x="0(\.0+)?" y="1" width="14[34]\d', row
    )  # the whole day


def test_a_hostile_alert_name_is_text_in_the_row_and_in_its_details_toggle(
    portal_config: dict[str, Any],
) -> None:
    """Prometheus 3 takes any UTF-8 alert name; a resolved alert's name is also read out by the
    "Details" toggle (for screen readers): text there too, never markup."""
    hostile = '<img src=x onerror=alert(1)>"'
    now = time.time()
    alert = simulated.SimAlert(
        hostile, "warning", {}, "summary", "description", "vector(1)", spans=[(now - 900, now - 600)]
    )
    html = _simulated_card(portal_config, alert, "is-resolved")
    escaped = "&lt;img src=x onerror=alert(1)&gt;&#34;"
    row = alert_row(html, escaped)
    assert row is not None and "is-resolved" in row, html
    assert "<img" not in html
    assert f'<span class="is-sr-only">Details of the alert {escaped}</span>' in row


def test_a_long_alert_name_may_break_between_its_words_and_stays_text() -> None:
    assert word_breaks("KubeDeploymentReplicasMismatch") == "Kube<wbr>Deployment<wbr>Replicas<wbr>Mismatch"
    assert word_breaks("HTTP5xxRatio") == "HTTP5xx<wbr>Ratio"
    assert word_breaks("KubeAPIErrorsHigh") == "Kube<wbr>API<wbr>Errors<wbr>High"  # an acronym is a word
    assert word_breaks("<b>EvilName</b>") == "&lt;b&gt;Evil<wbr>Name&lt;/<wbr>b&gt;"


@pytest.mark.parametrize(
    ("name", "broken"),
    [
        ("taiga-back-7d9c5b8f6-x2kqp", "taiga-<wbr>back-<wbr>7d9c5b8f6-<wbr>x2kqp"),  # after a separator
        ("node_cpu_seconds_total", "node_<wbr>cpu_<wbr>seconds_<wbr>total"),
        ("platform/portal", "platform/<wbr>portal"),
        ("harbor.example.com", "harbor<wbr>.example<wbr>.com"),  # before a dot: no line ends as a sentence
        ("k3s-agent-2:9100", "k3s-<wbr>agent-<wbr>2:9100"),
        ("a--b", "a--<wbr>b"),  # after the run, not inside it
        ("1.31", "1.31"),  # a number is one word
        ("NodeMemoryHighUtilization", "Node<wbr>Memory<wbr>High<wbr>Utilization"),
        ("lowercase", "lowercase"),
        ("", ""),
    ],
)
def test_an_identifier_may_break_at_its_natural_boundaries_only(name: str, broken: str) -> None:
    assert word_breaks(name) == broken
    assert str(word_breaks(name)).replace("<wbr>", "") == name  # nothing added to the text itself


def test_a_teams_own_severity_values_have_their_level_and_a_wrong_level_is_refused() -> None:
    """P1 read as "Info (P1)" and counted with the info alerts: the usual P1/sev1 and P2/sev2 are
    known, and a team adds its own (any case), over the usual ones."""
    usual = IncidentsSettings()
    assert [usual.level_of({"severity": v}) for v in ("P1", "Sev-1", "p2", "P3", "")] == [
        "critical",
        "critical",
        "warning",
        "info",
        "info",
    ]
    team = IncidentsSettings(severity_label="priority", severity_levels={"P0": "critical", "Major": "info"})
    assert team.level_of({"priority": "p0"}) == "critical" and team.level_of({"priority": "MAJOR"}) == "info"
    assert team.level_of({"severity": "critical"}) == "info"  # not its severity label
    with pytest.raises(ValidationError, match="severity_levels"):
        IncidentsSettings(severity_levels={"P1": "urgent"})
