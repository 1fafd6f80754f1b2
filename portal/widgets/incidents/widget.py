"""The incidents card: every alert of the last 24 hours, firing now or fired and resolved.

Three parts, each failing on its own: Prometheus' alerts firing now (`/api/v1/alerts`), its
history of the day (`/api/v1/rules` and `ALERTS` over a range query), and, when configured,
Alertmanager's alerts and silences (who silenced an alert, until when; which are inhibited).
When Alertmanager is down the card still shows Prometheus' view and says so; when Prometheus is
down it keeps its last good data, marked stale. Durations and "since" are written from the
view's clock step (`clock = PER_MINUTE`).

The severity filter is a choice the card sends with each poll (`?severity=critical`): the rows
are cut on the server. A change of the filter is also kept per user in the portal's database
(`POST /widgets/incidents/severity`), so that a first load on any device starts with it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

from flask import Blueprint, Response, request
from flask_babel import format_time, gettext, to_user_timezone
from flask_babel import lazy_gettext as _l
from pydantic import Field, field_validator

from ...config import WidgetSection
from ...identity import User
from ...storage import Preference, user_preferences
from ...web.i18n import format_day
from ..contract import PER_MINUTE, Part, Widget, WidgetContext, WidgetView
from ..metrics import format as fmt
from ..metrics.client import ActiveAlert
from ..metrics.upstream import PROMETHEUS
from .client import AlertmanagerClient, AlertmanagerState
from .memory import HeldMemory
from .timeline import (
    DAY,
    History,
    Incident,
    alertmanager_link,
    fetch_history,
    incidents,
    prometheus_link,
    silence_link,
    triage,
)
from .upstream import ALERTMANAGER

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
# The filter kept per user: "" shows every alert.
SEVERITY_FILTER = Preference("incidents", "severity", Literal["", "critical", "warning", "info"], "")
# Severity label values as tools write them, by the card's three levels (anything else: info;
# widgets.incidents.severity_levels adds a team's own).
_LEVELS: Mapping[str, Severity] = {
    **dict.fromkeys(
        ("critical", "crit", "page", "error", "high", "emergency", "alert", "fatal", "p1", "sev1", "sev-1"),
        "critical",
    ),
    **dict.fromkeys(("warning", "warn", "medium", "major", "p2", "sev2", "sev-2"), "warning"),
}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class IncidentsSettings(WidgetSection):
    """widgets.incidents: which label is the severity, which labels to show, what to leave out."""

    severity_label: str = "severity"
    # A team's own severity values, by the card's level ({"P0": critical, "minor": info}); case
    # does not matter. Added to the usual ones (critical, page, P1, sev1 … warning, P2 …).
    severity_levels: dict[str, Severity] = Field(default_factory=dict)
    # Shown besides alertname, namespace and pod (or instance).
    labels: tuple[str, ...] = ()
    # Alerts that always fire on purpose (kube-prometheus' heartbeats): never listed.
    exclude: tuple[str, ...] = ("Watchdog", "InfoInhibitor")
    # Seconds between two points of the day's history: at least the rules' evaluation interval
    # (and widened to stay within Prometheus' 11,000 points). Start and end are known to ±1 step.
    history_step: int = Field(60, ge=1, le=3600)
    max_alerts: int = Field(50, ge=1, le=500)

    @field_validator("severity_label")
    @classmethod
    def _label_name(cls, value: str) -> str:
        if not _LABEL_NAME.fullmatch(value):
            raise ValueError("a Prometheus label name")
        return value

    def level_of(self, labels: Mapping[str, str]) -> Severity:
        """An alert's level, from its severity label."""
        value = labels.get(self.severity_label, "").strip().lower()
        own = {key.strip().lower(): level for key, level in self.severity_levels.items()}
        return own.get(value) or _LEVELS.get(value, "info")

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _LABEL_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a Prometheus label name")
        return value


def _safe_link(url: str) -> str:
    """Only http(s) links are followed: an alert's text decides nothing else."""
    return url if url.startswith(("http://", "https://")) and '"' not in url else ""


@dataclass(frozen=True)
class Moment:
    """A time of the card: `time` ("14:05"), and `day` ("30/11/2026") when it is not today, so
    sentences can say "since 14:05" or "since 30/11/2026 at 14:05" (French: "depuis le … à …")."""

    iso: str
    time: str
    day: str = ""

    @property
    def text(self) -> str:
        """The time alone today, else the date and the time (a ribbon's list of firings)."""
        return gettext("%(date)s at %(time)s", date=self.day, time=self.time) if self.day else self.time


@dataclass(frozen=True)
class SilenceView:
    by: str
    until: Moment | None
    comment: str
    link: str


@dataclass(frozen=True)
class IncidentView:
    """One row of the card, written in the user's language from the view's clock."""

    id: str
    alertname: str
    level: Severity
    severity: str  # the label's own value ("" when the alert has none)
    firing: bool
    summary: str
    description: str
    labels: tuple[tuple[str, str], ...]
    start: Moment
    end: Moment | None
    duration: str
    times: int  # firings in the window
    ribbon: tuple[tuple[str, str], ...]  # x, width of each firing on the 1440-wide ribbon
    ribbon_label: str  # the latest few firings in words ("09:12–09:30, 14:02–now"), for its label
    silences: tuple[SilenceView, ...]
    silenced: bool
    inhibited: bool
    inhibitors: tuple[str, ...]  # the names of the inhibiting alerts, when Alertmanager holds them
    source: str  # Prometheus' graph of the rule
    runbook: str  # the alert's runbook (http and https only), "" without one
    alertmanager: str  # Alertmanager's page of it
    elsewhere: bool = False  # not this Prometheus' alert: Alertmanager's alone, its past unknown


def _moment(at: float, now: float) -> Moment:
    moment = datetime.fromtimestamp(at, tz=UTC)
    day = to_user_timezone(moment).date()
    today = to_user_timezone(datetime.fromtimestamp(now, tz=UTC)).date()
    return Moment(
        moment.isoformat(timespec="seconds"),
        str(format_time(moment, "short")),
        "" if day == today else format_day(day, today),
    )


def _shown_labels(
    labels: Mapping[str, str], extra: Sequence[str], severity_label: str
) -> tuple[tuple[str, str], ...]:
    names = ["namespace", "pod" if "pod" in labels else "instance", *extra]
    seen = {"alertname", severity_label}
    found = []
    for name in names:
        if name in labels and name not in seen:
            seen.add(name)
            found.append((name, labels[name]))
    return tuple(found)


def incident_view(
    incident: Incident,
    now: float,
    settings: IncidentsSettings,
    prometheus_url: str,
    alertmanager_url: str | None,
) -> IncidentView:
    severity = incident.labels.get(settings.severity_label, "")
    spans = incident.intervals
    recent = ", ".join(
        _moment(a, now).text
        + "–"
        + (gettext("now") if incident.firing and b >= now else _moment(b, now).text)
        for a, b in spans[-5:]
    )
    generator = incident.held.generator_url if incident.held else ""
    source = _safe_link(generator) or (
        "" if incident.elsewhere else prometheus_link(prometheus_url, incident.rule, incident.labels)
    )
    silences = tuple(
        SilenceView(
            by=s.created_by,
            until=_moment(s.ends_at, now) if s.ends_at else None,
            comment=s.comment,
            link=silence_link(alertmanager_url, s) if alertmanager_url else "",
        )
        for s in incident.silences
    )
    end = incident.end if incident.end is not None else now
    return IncidentView(
        id="alert-" + hashlib.blake2b(repr(incident.key).encode(), digest_size=6).hexdigest(),
        alertname=incident.alertname,
        level=settings.level_of(incident.labels),
        severity=severity,
        firing=incident.firing,
        summary=incident.summary,
        description=incident.description,
        labels=_shown_labels(incident.labels, settings.labels, settings.severity_label),
        start=_moment(incident.since, now),
        end=_moment(incident.end, now) if incident.end is not None else None,
        duration=fmt.duration(end - incident.since),
        times=len(spans),
        ribbon=fmt.ribbon(spans, now - DAY, now),
        ribbon_label=recent,
        silences=silences,
        silenced=incident.silenced,
        inhibited=incident.inhibited,
        inhibitors=incident.inhibitors,
        source=_safe_link(source),
        runbook=_safe_link(incident.runbook),
        alertmanager=alertmanager_link(alertmanager_url, incident.labels) if alertmanager_url else "",
        elsewhere=incident.elsewhere,
    )


def severity_rank(settings: IncidentsSettings) -> Callable[[Incident], int]:
    """An alert's rank by severity: 0 for critical, 1 for warning, 2 for info."""
    return lambda incident: SEVERITIES.index(settings.level_of(incident.labels))


def every_alert_link(alertmanager_url: str | None, prometheus_url: str) -> str:
    """Where the alerts the card leaves out can be read: Alertmanager's list (silenced and
    inhibited ones included), else Prometheus' page of its alerts."""
    if alertmanager_url:
        return f"{alertmanager_url}/#/alerts?silenced=true&inhibited=true"
    return f"{prometheus_url}/alerts"


@dataclass(frozen=True)
class Tally:
    """The card's counts by severity: every alert of the day, and of those firing, the live ones
    (someone is paged) apart from the silenced and the inhibited ones."""

    alerts: dict[Severity, int]
    live: dict[Severity, int]
    silenced: dict[Severity, int]
    inhibited: dict[Severity, int]


def tally(rows: Sequence[Incident], settings: IncidentsSettings) -> Tally:
    """Count the rows; an alert both silenced and inhibited counts as silenced (someone chose it)."""
    found = Tally(*(dict.fromkeys(SEVERITIES, 0) for _ in range(4)))
    for row in rows:
        level = settings.level_of(row.labels)
        found.alerts[level] += 1
        if row.firing:
            kind = found.silenced if row.silenced else found.inhibited if row.inhibited else found.live
            kind[level] += 1
    return found


def read_alertmanager(client: AlertmanagerClient) -> AlertmanagerState:
    """What Alertmanager holds now, and what it held at the portal's earlier reads of the day."""
    state = client.state(time.monotonic() + client.limits.timeout)
    return HeldMemory(client.store).keep(state, time.time()) if client.store is not None else state


class IncidentsWidget(Widget):
    """What fired in the last 24 hours, what still fires, and who is on it."""

    slug = "incidents"
    title = _l("Incidents (24 h)")
    icon = "megaphone"
    scope = "shared"
    upstreams = (PROMETHEUS, ALERTMANAGER)
    optional_upstreams = frozenset({ALERTMANAGER.name})  # Prometheus is enough; it adds silences
    settings_model = IncidentsSettings
    clock = PER_MINUTE
    wide = True
    polls_in_background = True

    def parts(self, ctx: WidgetContext, user: User) -> Sequence[Part[Any]]:
        settings = ctx.settings
        assert isinstance(settings, IncidentsSettings)
        prometheus = ctx.client(PROMETHEUS)
        parts: list[Part[Any]] = [
            Part("firing", "", PROMETHEUS, prometheus.alerts),
            Part("history", "", PROMETHEUS, partial(fetch_history, prometheus, float(settings.history_step))),
        ]
        if ALERTMANAGER.name in ctx.clients:
            parts.append(
                Part("alertmanager", "", ALERTMANAGER, partial(read_alertmanager, ctx.client(ALERTMANAGER)))
            )
        return parts

    def choice(self, ctx: WidgetContext, user: User, args: Mapping[str, str]) -> str:
        """The severity the card shows (`?severity=critical`, else the user's kept one), "" for all."""
        wanted = args["severity"] if "severity" in args else user_preferences(user).get(SEVERITY_FILTER)
        return wanted if wanted in SEVERITIES else ""

    def register_routes(self, blueprint: Blueprint) -> None:
        from ..writes import keep_choice  # noqa: PLC0415 - the state imports the widgets

        def keep_severity() -> Response:
            """Keep my severity filter for every device."""
            return keep_choice(self, SEVERITY_FILTER, request.form.get("severity", ""))

        blueprint.add_url_rule(
            "/widgets/incidents/severity", "keep_severity", keep_severity, methods=["POST"]
        )

    def is_empty(self, view: WidgetView) -> bool:
        return False  # the card says "no alert in 24 hours" itself, with its filter

    def decorate(self, view: WidgetView, ctx: WidgetContext, user: User) -> str:
        """The rows of the chosen severity, the counts of every severity, written for `view.now`."""
        settings = ctx.settings
        assert isinstance(settings, IncidentsSettings)
        firing_part, history_part, am_part = (
            view.part("firing"),
            view.part("history"),
            view.part("alertmanager"),
        )
        active: tuple[ActiveAlert, ...] | None = firing_part.value if firing_part else None
        history: History | None = history_part.value if history_part else None
        state: AlertmanagerState | None = am_part.value if am_part else None
        now = view.now.timestamp() if view.now else time.time()
        if history is not None:
            now = max(now, history.end)  # never draw data newer than the clock as the future
        active_as_of = firing_part.result.fetched_at if firing_part and active is not None else None
        rows = triage(
            incidents(history, active, state, now, DAY, frozenset(settings.exclude), active_as_of),
            severity_rank(settings),
        )
        prometheus = ctx.client(PROMETHEUS)
        am_url = ctx.client(ALERTMANAGER).public_url if ALERTMANAGER.name in ctx.clients else None
        counts = tally(rows, settings)
        chosen = [r for r in rows if not view.choice or settings.level_of(r.labels) == view.choice]
        shown = [
            incident_view(r, now, settings, prometheus.public_url, am_url)
            for r in chosen[: settings.max_alerts]
        ]
        view.extra.update(
            rows=shown,
            more=max(0, len(chosen) - len(shown)),
            more_link=every_alert_link(am_url, prometheus.public_url),
            counts=counts.alerts,
            firing=counts.live,
            silenced=counts.silenced,
            inhibited=counts.inhibited,
            total=len(rows),
            firing_total=sum(counts.live.values()),
            # Said to screen readers by name, whatever the filter shows (the count is of them all).
            critical_names=list(
                dict.fromkeys(
                    r.alertname
                    for r in rows
                    if r.firing
                    and not (r.silenced or r.inhibited)
                    and settings.level_of(r.labels) == "critical"
                )
            ),
            # Live alerts the chosen severity hides: a filter kept from yesterday must not hide
            # today's critical alert without saying so.
            hidden_firing=sum(n for level, n in counts.live.items() if level != view.choice)
            if view.choice
            else 0,
            muted_total=sum(counts.silenced.values()) + sum(counts.inhibited.values()),
            alertmanager_url=am_url or "",
            alertmanager_configured=am_url is not None,
            # Prometheus' data kept from an earlier fetch: the rows are drawn muted.
            stale=any(part is not None and part.stale for part in (firing_part, history_part)),
            ticks=tuple(f"{RIBBON_TICK * k:g}" for k in range(1, 4)),
        )
        return ""


RIBBON_TICK = fmt.RIBBON_WIDTH / 4  # a tick every 6 hours
