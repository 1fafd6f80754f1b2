"""Alertmanager's API v2: the alerts it holds (with silenced and inhibited state) and its silences.

Pure Python, no Flask (see docs/upstream-apis.md § 3.8). Alertmanager is not a history
store: an alert whose `endsAt` has passed is dropped from `/api/v2/alerts`, so the incidents
card takes its history from Prometheus and uses Alertmanager only for what Prometheus does not
know: who silenced an alert, until when, and which alerts are inhibited.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...caching.stores import Store
from ...upstreams.errors import N_, Reason, UpstreamBadResponse
from ..metrics.client import MonitoringClient, parse_rfc3339

UPSTREAM = "Alertmanager"


@dataclass(frozen=True)
class HeldAlert:
    """An alert Alertmanager holds now (`GET /api/v2/alerts`)."""

    labels: dict[str, str]
    fingerprint: str
    state: str  # "active" | "suppressed" | "unprocessed"
    silenced_by: tuple[str, ...]  # silence ids
    inhibited_by: tuple[str, ...]  # fingerprints of the inhibiting alerts
    starts_at: float | None
    generator_url: str
    annotations: dict[str, str] = field(default_factory=dict)  # summary, description, runbook_url


@dataclass(frozen=True)
class Silence:
    """A silence (`GET /api/v2/silences`)."""

    id: str
    state: str  # "active" | "pending" | "expired"
    created_by: str
    comment: str
    starts_at: float | None
    ends_at: float | None


@dataclass(frozen=True)
class Seen:
    """An alert Alertmanager held at one of the portal's reads, and when that read was last."""

    alert: HeldAlert
    last_seen: float


@dataclass(frozen=True)
class AlertmanagerState:
    """What the incidents card needs of Alertmanager: its alerts and the silences they name, and
    the alerts it held at earlier reads of the day but no longer does (memory.py)."""

    alerts: tuple[HeldAlert, ...]
    silences: dict[str, Silence]  # by id; active and pending ones only
    gone: tuple[Seen, ...] = ()


def _strings(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if isinstance(v, str | int | float)}


def _ids(raw: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in raw if isinstance(x, str)) if isinstance(raw, list) else ()


class AlertmanagerClient(MonitoringClient):
    """Reads one Alertmanager (API v2, 0.22 and later)."""

    upstream = UPSTREAM
    store: Store | None = None  # where the portal remembers what it read (memory.py); None: nowhere

    def _list(self, path: str, deadline: float | None) -> list[Any]:
        body = self._http.get(f"{self.base_url}/api/v2/{path}", deadline=deadline)
        if not isinstance(body, list):
            raise UpstreamBadResponse(
                UPSTREAM,
                Reason.of(N_("%(upstream)s returned a malformed '%(key)s'"), upstream=UPSTREAM, key=path),
                f"GET /api/v2/{path}: not a list",
            )
        return body

    def alerts(self, deadline: float | None = None) -> tuple[HeldAlert, ...]:
        """Every alert it holds: active, silenced and inhibited (resolved ones are gone)."""
        found = []
        for raw in self._list("alerts", deadline):
            if not isinstance(raw, dict):
                continue
            status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
            assert isinstance(status, dict)
            url = raw.get("generatorURL")
            found.append(
                HeldAlert(
                    labels=_strings(raw.get("labels")),
                    fingerprint=str(raw.get("fingerprint") or ""),
                    state=str(status.get("state") or "unprocessed"),
                    silenced_by=_ids(status.get("silencedBy")),
                    inhibited_by=_ids(status.get("inhibitedBy")),
                    starts_at=parse_rfc3339(raw.get("startsAt")),
                    generator_url=url if isinstance(url, str) else "",
                    annotations=_strings(raw.get("annotations")),
                )
            )
        return tuple(found)

    def silences(self, deadline: float | None = None) -> tuple[Silence, ...]:
        """Every silence it keeps (expired ones too, for its retention period)."""
        found = []
        for raw in self._list("silences", deadline):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue
            status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
            assert isinstance(status, dict)
            found.append(
                Silence(
                    id=raw["id"],
                    state=str(status.get("state") or ""),
                    created_by=str(raw.get("createdBy") or ""),
                    comment=str(raw.get("comment") or ""),
                    starts_at=parse_rfc3339(raw.get("startsAt")),
                    ends_at=parse_rfc3339(raw.get("endsAt")),
                )
            )
        return tuple(found)

    def state(self, deadline: float | None = None) -> AlertmanagerState:
        """Its alerts and its active (or pending) silences, in one fetch."""
        alerts = self.alerts(deadline)
        silences = {s.id: s for s in self.silences(deadline) if s.state != "expired"}
        return AlertmanagerState(alerts, silences)
