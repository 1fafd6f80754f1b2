"""The last 24 hours of alerts: when each one fired, from Prometheus' `ALERTS` series.

The recipe of docs/upstream-apis.md § 3.7: a range query of
`max_over_time(ALERTS{alertstate="firing"}[<step>])` over the day, with a step no shorter than
the rules' evaluation interval (and widened to stay within 11,000 points); points closer than a
step belong to one firing interval, a larger gap ends it. An interval is known to ±1 step.
Alertmanager keeps no history; `/api/v1/alerts` tells which alerts fire now.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from ..metrics.client import ActiveAlert, AlertRule, PrometheusClient, Series, choose_step
from .client import AlertmanagerState, HeldAlert, Silence

DAY = 86400.0
HIDDEN_LABELS = frozenset({"__name__", "alertstate"})


@dataclass(frozen=True)
class Firing:
    """One alert's firing intervals over the window: (start, end), oldest first, to ±1 step."""

    labels: dict[str, str]
    intervals: tuple[tuple[float, float], ...]
    open: bool  # the last interval reaches the end of the window


@dataclass(frozen=True)
class History:
    """What Prometheus remembers of the day: firing intervals by alert, and the alerting rules."""

    start: float
    end: float
    step: float
    firings: tuple[Firing, ...]
    rules: tuple[AlertRule, ...]


def intervals(
    points: Sequence[tuple[float, float]], step: float, end: float
) -> tuple[tuple[tuple[float, float], ...], bool]:
    """Firing intervals from the points of one series (the recipe); and whether the last is open."""
    found: list[tuple[float, float]] = []
    first = previous = None
    for t, _ in points:
        if first is None or previous is None:
            first = previous = t
            continue
        if t - previous > step * 1.001:
            found.append((first - step, previous))
            first = t
        previous = t
    still = False
    if first is not None and previous is not None:
        found.append((first - step, previous))
        still = previous >= end - step * 0.5
    return tuple(found), still


def key_of(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """An alert's identity: its labels, without the series name and its state."""
    return tuple(sorted((k, v) for k, v in labels.items() if k not in HIDDEN_LABELS))


def fetch_history(client: PrometheusClient, step_wanted: float, window: float = DAY) -> History:
    """The rules and the day's `ALERTS`: two calls, within one deadline."""
    deadline = time.monotonic() + client.limits.timeout
    groups = client.rules(deadline)
    intervals_seen = [g.interval for g in groups if g.rules and g.interval > 0]
    now = time.time()
    step = choose_step(now - window, now, max(step_wanted, min(intervals_seen, default=step_wanted)))
    # Evaluated at whole multiples of the step: the same instants at every fetch, so that an
    # alert's start and end (known to one step) stay where they are from one refresh to the next.
    start = math.floor((now - window) / step) * step
    end = start + math.floor((now - start) / step) * step
    window_s = f"{math.ceil(step)}s"
    series = client.query_range(
        f'max_over_time(ALERTS{{alertstate="firing"}}[{window_s}])', start, end, step, deadline
    )
    return History(start, end, step, firings_of(series, step, end), tuple(r for g in groups for r in g.rules))


def firings_of(series: Iterable[Series], step: float, end: float) -> tuple[Firing, ...]:
    merged: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
    for one in series:
        merged.setdefault(key_of(one.labels), []).extend(one.points)
    found = []
    for key, points in merged.items():
        spans, still = intervals(sorted(points), step, end)
        found.append(Firing(dict(key), spans, still))
    return tuple(found)


# --- one row per alert ------------------------------------------------------------------------

_LABEL_REF = re.compile(r"\{\{-?\s*(?:\$labels|\.Labels)\.([a-zA-Z_][a-zA-Z0-9_]*)\s*-?\}\}")


def expand(template: str, labels: Mapping[str, str]) -> str | None:
    """A rule's annotation with its label references filled in; None when it needs more (a value)."""
    text = _LABEL_REF.sub(lambda m: labels.get(m.group(1), ""), template)
    return None if "{{" in text else text


@dataclass(frozen=True)
class Incident:
    """One alert of the window as the card lists it."""

    key: tuple[tuple[str, str], ...]
    labels: dict[str, str]
    firing: bool
    intervals: tuple[tuple[float, float], ...]  # the last one ends now while firing
    start: float  # of the latest firing, within the window (where its ribbon starts)
    end: float | None  # None while firing
    since: float  # when the latest firing began, even before the window (activeAt + `for`)
    summary: str
    description: str
    runbook: str  # the `runbook_url` annotation, as written (not checked)
    rule: AlertRule | None
    held: HeldAlert | None  # Alertmanager's view of it, when it holds it
    silences: tuple[Silence, ...]
    inhibitors: tuple[str, ...] = ()  # the names of the alerts that inhibit it, as Alertmanager holds them
    elsewhere: bool = False  # Alertmanager holds it, and this Prometheus did not make it (no history)

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def last_activity(self) -> float:
        return math.inf if self.end is None else self.end

    @property
    def silenced(self) -> bool:
        return bool(self.held and self.held.silenced_by)

    @property
    def inhibited(self) -> bool:
        return bool(self.held and self.held.inhibited_by)

    @property
    def muted(self) -> bool:
        """Silenced or inhibited in Alertmanager: firing, but nobody is paged for it."""
        return self.silenced or self.inhibited


def _held_for(labels: Mapping[str, str], held: Sequence[HeldAlert]) -> HeldAlert | None:
    """The alert Alertmanager holds for these labels (it may add Prometheus' external labels)."""
    best: HeldAlert | None = None
    for alert in held:
        matches = all(alert.labels.get(k) == v for k, v in labels.items())
        if matches and (best is None or len(alert.labels) < len(best.labels)):
            best = alert
    return best


def _annotations(
    alert: ActiveAlert | None, rule: AlertRule | None, labels: Mapping[str, str]
) -> dict[str, str]:
    """Its summary, description and runbook_url: as Prometheus expands them while it fires, else
    the rule's templates with the labels filled in (left out when they need a value)."""
    names = ("summary", "description", "runbook_url")
    if alert is not None:
        return {name: alert.annotations.get(name, "") for name in names}
    if rule is None:
        return dict.fromkeys(names, "")
    return {name: expand(rule.annotations.get(name, ""), labels) or "" for name in names}


def _names_of(fingerprints: Sequence[str], held: Sequence[HeldAlert]) -> tuple[str, ...]:
    """The alert names of these fingerprints among the alerts Alertmanager holds, sorted."""
    if not fingerprints:
        return ()  # most alerts: not inhibited (no pass over every held alert for each)
    wanted = set(fingerprints)
    return tuple(sorted({a.labels.get("alertname", "") for a in held if a.fingerprint in wanted} - {""}))


def _began(alert: ActiveAlert, rule: AlertRule | None, held: HeldAlert | None) -> float | None:
    """When a firing alert started firing: Prometheus' activeAt plus its rule's `for` (exact),
    else Alertmanager's startsAt; None when neither is known."""
    if alert.active_at:
        return alert.active_at + (rule.duration if rule else 0.0)
    return held.starts_at if held else None


def _fits(rule: AlertRule, labels: Mapping[str, str]) -> bool:
    """The alert has each label the rule adds (a templated value may be anything)."""
    return all(labels.get(k) == v or "{{" in v for k, v in rule.labels.items())


def rule_for(labels: Mapping[str, str], named: Sequence[AlertRule]) -> AlertRule | None:
    """The rule that made the alert, among the rules of its name: two rules may share one (a
    warning at 80 %, a critical at 95 % with its own `for`); the one whose labels the alert
    has, the most specific if several do. None when none does and the name is not unique."""
    fitting = [rule for rule in named if _fits(rule, labels)]
    if fitting:
        return max(fitting, key=lambda rule: len(rule.labels))
    return named[0] if len(named) == 1 else None


def incidents(
    history: History | None,
    active: Sequence[ActiveAlert] | None,
    alertmanager: AlertmanagerState | None,
    now: float,
    window: float = DAY,
    excluded: frozenset[str] = frozenset(),
    active_as_of: float | None = None,
) -> list[Incident]:
    """Every alert that fired in the window, newest activity first (firing ones, then by end).

    `active` and `history` are fetched apart. An alert that history shows firing up to its last
    step, and that `active` (fetched at `active_as_of`, None: unknown) cannot have seen yet, is
    still firing: a just-fired alert is never shown as resolved for a poll.
    """
    firing_now = {key_of(a.labels): a for a in (active or ()) if a.state == "firing"}
    behind = history is not None and (active_as_of is None or active_as_of < history.end)
    rules: dict[str, list[AlertRule]] = {}
    for one in history.rules if history else ():
        rules.setdefault(one.name, []).append(one)
    recorded = {key_of(f.labels): f for f in (history.firings if history else ())}
    step = history.step if history else 0.0
    held = alertmanager.alerts if alertmanager else ()
    found = []
    for key in set(recorded) | set(firing_now):
        labels = dict(key)
        if labels.get("alertname") in excluded:
            continue
        alert = firing_now.get(key)
        rule = rule_for(labels, rules.get(labels.get("alertname", ""), ()))
        record = recorded.get(key)
        spans = record.intervals if record else ()
        shown = [(max(a, now - window), min(b, now)) for a, b in spans if b >= now - window]
        firing = alert is not None or (behind and record is not None and record.open)
        match = _held_for(labels, held)
        since: float | None = None
        if alert is None and firing and shown:
            shown[-1] = (shown[-1][0], now)  # history's latest step says it fires; `active` is older
        elif alert is not None:
            began = _began(alert, rule, match)
            ongoing = bool(shown) and history is not None and shown[-1][1] >= history.end - 2 * step
            if ongoing:
                began = shown[-1][0] if began is None else began
                del shown[-1]
            since = now if began is None else min(began, now)
            shown.append((max(since, now - window), now))  # the ribbon shows the window only
        shown = [span for span in shown if span[1] >= span[0]]
        if not shown:
            continue
        texts = _annotations(alert, rule, labels)
        silences = (
            tuple(alertmanager.silences[i] for i in match.silenced_by if i in alertmanager.silences)
            if match and alertmanager
            else ()
        )
        inhibitors = _names_of(match.inhibited_by, held) if match else ()
        found.append(
            Incident(
                key=key,
                labels=labels,
                firing=firing,
                intervals=tuple(shown),
                start=shown[-1][0],
                end=None if firing else shown[-1][1],
                since=shown[-1][0] if since is None else since,
                summary=texts["summary"],
                description=texts["description"],
                runbook=texts["runbook_url"],
                rule=rule,
                held=match if alert is not None else None,
                silences=silences if alert is not None else (),
                inhibitors=inhibitors if alert is not None else (),
            )
        )
    if alertmanager is not None and history is not None:  # whose alerts they are needs its rules
        known = set(rules) | {labels.get("alertname", "") for labels in map(dict, recorded)}
        claimed = list(firing_now) + list(recorded)
        found += held_elsewhere(alertmanager, known, claimed, now, window, excluded)
    found.sort(key=lambda i: (i.last_activity, i.start), reverse=True)
    return found


def held_elsewhere(
    alertmanager: AlertmanagerState,
    known: set[str],
    claimed: Sequence[tuple[tuple[str, str], ...]],
    now: float,
    window: float = DAY,
    excluded: frozenset[str] = frozenset(),
) -> list[Incident]:
    """The alerts Alertmanager holds that this Prometheus did not make: from Loki's ruler, another
    Prometheus, a cron job posting to its API. Someone is paged for them; a card that left them
    out said "nothing firing" through a log-based critical. An alert is this Prometheus' when
    one of its rules bears its name, or when an alert it reports has a subset of its labels
    (Alertmanager's copy may carry external labels). Alertmanager keeps no history and drops
    resolved alerts: such a row fires since its `startsAt`; once it resolves, it is shown resolved
    when the portal last saw it held (`gone`, memory.py), for the rest of the window."""
    by_name: dict[str, list[dict[str, str]]] = {}
    for key in claimed:
        labels = dict(key)
        by_name.setdefault(labels.get("alertname", ""), []).append(labels)

    def theirs(alert: HeldAlert) -> bool:
        name = alert.labels.get("alertname", "")
        if not name or name in known or name in excluded:
            return False
        return not any(labels.items() <= alert.labels.items() for labels in by_name.get(name, ()))

    found = []
    ended = [(one.alert, one.last_seen) for one in alertmanager.gone if one.last_seen >= now - window]
    for alert, end in [(alert, None) for alert in alertmanager.alerts] + ended:
        if not theirs(alert):
            continue
        last = now if end is None else end
        since = min(alert.starts_at or last, last)
        start = max(since, now - window)
        found.append(
            Incident(
                key=key_of(alert.labels),
                labels=dict(alert.labels),
                firing=end is None,
                intervals=((start, last),),
                start=start,
                end=end,
                since=since,
                summary=alert.annotations.get("summary", ""),
                description=alert.annotations.get("description", ""),
                runbook=alert.annotations.get("runbook_url", ""),
                rule=None,
                held=alert,
                silences=tuple(
                    alertmanager.silences[i] for i in alert.silenced_by if i in alertmanager.silences
                ),
                inhibitors=_names_of(alert.inhibited_by, alertmanager.alerts),
                elsewhere=True,
            )
        )
    return found


def triage(found: Iterable[Incident], rank: Callable[[Incident], int]) -> list[Incident]:
    """The order an on-call person reads: what fires and pages, most severe first (`rank`: 0 is
    the most severe), newest first within a severity; then the silenced and inhibited ones in the
    same order; then the resolved ones, the latest to end first. Ties go by labels: the same
    alerts give the same order (and the same card) at every refresh."""

    def key(incident: Incident) -> tuple[int, int, float, tuple[tuple[str, str], ...]]:
        if not incident.firing:
            return (2, 0, -incident.last_activity, incident.key)
        return (1 if incident.muted else 0, rank(incident), -incident.since, incident.key)

    return sorted(found, key=key)


def prometheus_link(public_url: str, rule: AlertRule | None, labels: Mapping[str, str]) -> str:
    """Prometheus' graph of the rule's expression (what Prometheus sends as the generator URL)."""
    expression = rule.query if rule else f'ALERTS{{alertname="{labels.get("alertname", "")}"}}'
    return f"{public_url}/graph?g0.expr={quote(expression, safe='')}&g0.tab=1"


def alertmanager_link(public_url: str, labels: Mapping[str, str]) -> str:
    """Alertmanager's page of the alerts with this name (silenced and inhibited ones included)."""
    name = labels.get("alertname", "").replace("\\", "\\\\").replace('"', '\\"')
    matcher = quote(f'{{alertname="{name}"}}', safe="")
    return f"{public_url}/#/alerts?silenced=true&inhibited=true&filter={matcher}"


def silence_link(public_url: str, silence: Silence) -> str:
    return f"{public_url}/#/silences/{quote(silence.id, safe='')}"
