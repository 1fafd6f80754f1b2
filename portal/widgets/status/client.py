"""Uptime Kuma's public status-page API: `/api/status-page/{slug}` and its heartbeats.

Pure Python, no Flask. Both endpoints are public (no credentials). Unknown fields are
ignored; a missing required field raises UpstreamBadResponse. Incidents come as `incident`
(one object or null, Uptime Kuma <= 2.0) or `incidents` (a list, 2.1+): both are read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from urllib.parse import quote

import requests

from ...upstreams.errors import N_, Reason, UpstreamBadResponse
from ...upstreams.http import BoundedJsonClient, HttpLimits, require

UPSTREAM = "Uptime Kuma"


class MonitorStatus(Enum):
    """Uptime Kuma's heartbeat status codes, plus UNKNOWN for a monitor without beats."""

    DOWN = 0
    UP = 1
    PENDING = 2
    MAINTENANCE = 3
    UNKNOWN = -1

    @property
    def severity(self) -> int:
        """Higher is worse; orders monitors and picks a page's overall state."""
        return {"UP": 0, "MAINTENANCE": 1, "UNKNOWN": 2, "PENDING": 3, "DOWN": 4}[self.name]


@dataclass(frozen=True)
class Monitor:
    id: int
    name: str
    type: str
    url: str | None
    status: MonitorStatus
    ping_ms: float | None
    uptime_24h: float | None  # fraction 0..1
    last_beat: datetime | None


@dataclass(frozen=True)
class Group:
    name: str
    monitors: tuple[Monitor, ...]
    id: int | None = None  # Uptime Kuma's own, stable when groups are reordered


@dataclass(frozen=True)
class Incident:
    id: int
    title: str
    content: str
    style: str
    created: datetime | None
    updated: datetime | None


@dataclass(frozen=True)
class Maintenance:
    id: int
    title: str
    description: str


@dataclass(frozen=True)
class StatusPage:
    slug: str
    title: str
    groups: tuple[Group, ...]
    incidents: tuple[Incident, ...]
    maintenances: tuple[Maintenance, ...]

    @property
    def monitors(self) -> list[Monitor]:
        return [m for g in self.groups for m in g.monitors]

    def count(self, status: MonitorStatus) -> int:
        return sum(1 for m in self.monitors if m.status is status)

    @property
    def up_count(self) -> int:
        return self.count(MonitorStatus.UP)

    @property
    def pending_count(self) -> int:
        return self.count(MonitorStatus.PENDING)

    degraded_count = pending_count

    @property
    def down_count(self) -> int:
        return self.count(MonitorStatus.DOWN)

    @property
    def maintenance_count(self) -> int:
        return self.count(MonitorStatus.MAINTENANCE)


def parse_kuma_time(value: Any) -> datetime | None:
    """Uptime Kuma stores UTC without a zone ("2026-08-22 10:00:00.123"); parse it as UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("T", " ").removesuffix("Z")
    for pattern in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


class UptimeKumaClient:
    """Reads status pages; `credentials` is unused (the status-page API is public)."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        credentials: None = None,
        timeout: HttpLimits | None = None,
        verify: bool | str = True,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limits = timeout or HttpLimits()
        self._http = BoundedJsonClient(UPSTREAM, session, self.limits, verify)

    def status_page(self, slug: str) -> StatusPage:
        """One status page with its monitors' latest heartbeat, ping and 24 h uptime."""
        deadline = time.monotonic() + self.limits.timeout
        quoted = quote(slug, safe="")
        page = self._http.get(f"{self.base_url}/api/status-page/{quoted}", deadline=deadline)
        beats = self._http.get(f"{self.base_url}/api/status-page/heartbeat/{quoted}", deadline=deadline)
        return self._parse(slug, page, beats)

    # --- parsing -------------------------------------------------------------------------

    def _parse(self, slug: str, page: Any, beats: Any) -> StatusPage:
        config = require(page, "config", dict, UPSTREAM)
        groups_raw = require(page, "publicGroupList", list, UPSTREAM)
        heartbeat_list = require(beats, "heartbeatList", dict, UPSTREAM)
        uptime_list = require(beats, "uptimeList", dict, UPSTREAM)
        groups = tuple(self._group(g, heartbeat_list, uptime_list) for g in groups_raw)
        maintenance_raw = page.get("maintenanceList") or []
        if not isinstance(maintenance_raw, list):
            raise UpstreamBadResponse(
                UPSTREAM,
                Reason.of(
                    N_("%(upstream)s returned a malformed '%(key)s'"),
                    upstream=UPSTREAM,
                    key="maintenanceList",
                ),
            )
        return StatusPage(
            slug=slug,
            title=str(config.get("title") or slug),
            groups=groups,
            incidents=tuple(self._incident(i) for i in self._incidents_of(page)),
            maintenances=tuple(self._maintenance(m) for m in maintenance_raw if isinstance(m, dict)),
        )

    @staticmethod
    def _incidents_of(page: dict[str, Any]) -> list[dict[str, Any]]:
        """2.1+ sends `incidents` (a list); older versions one `incident` (or null)."""
        many = page.get("incidents")
        if isinstance(many, list):
            return [i for i in many if isinstance(i, dict)]
        one = page.get("incident")
        return [one] if isinstance(one, dict) else []

    def _group(self, raw: Any, beats: dict[str, Any], uptimes: dict[str, Any]) -> Group:
        name = require(raw, "name", str, UPSTREAM)
        monitors_raw = require(raw, "monitorList", list, UPSTREAM)
        monitors = tuple(self._monitor(m, beats, uptimes) for m in monitors_raw)
        group_id = raw.get("id")
        return Group(name=name, monitors=monitors, id=group_id if isinstance(group_id, int) else None)

    def _monitor(self, raw: Any, beats: dict[str, Any], uptimes: dict[str, Any]) -> Monitor:
        monitor_id = require(raw, "id", int, UPSTREAM)
        name = require(raw, "name", str, UPSTREAM)
        history = beats.get(str(monitor_id)) or []
        latest = history[-1] if isinstance(history, list) and history else None
        status = MonitorStatus.UNKNOWN
        ping: float | None = None
        last_beat = None
        if isinstance(latest, dict):
            try:
                status = MonitorStatus(latest.get("status"))
            except ValueError:
                status = MonitorStatus.UNKNOWN
            raw_ping = latest.get("ping")
            if isinstance(raw_ping, int | float) and not isinstance(raw_ping, bool) and raw_ping >= 0:
                ping = float(raw_ping)
            last_beat = parse_kuma_time(latest.get("time"))
        uptime = uptimes.get(f"{monitor_id}_24")
        uptime_24h = (
            float(uptime)
            if isinstance(uptime, int | float) and not isinstance(uptime, bool) and 0 <= uptime <= 1
            else None
        )
        url = raw.get("url")
        return Monitor(
            id=monitor_id,
            name=name,
            type=str(raw.get("type") or ""),
            url=url if isinstance(url, str) and url.startswith(("http://", "https://")) else None,
            status=status,
            ping_ms=ping,
            uptime_24h=uptime_24h,
            last_beat=last_beat,
        )

    @staticmethod
    def _incident(raw: dict[str, Any]) -> Incident:
        incident_id = raw.get("id")
        return Incident(
            id=incident_id if isinstance(incident_id, int) else 0,
            title=str(raw.get("title") or ""),
            content=str(raw.get("content") or ""),
            style=str(raw.get("style") or "info"),
            created=parse_kuma_time(raw.get("createdDate")),
            updated=parse_kuma_time(raw.get("lastUpdatedDate")),
        )

    @staticmethod
    def _maintenance(raw: dict[str, Any]) -> Maintenance:
        maintenance_id = raw.get("id")
        return Maintenance(
            id=maintenance_id if isinstance(maintenance_id, int) else 0,
            title=str(raw.get("title") or ""),
            description=str(raw.get("description") or ""),
        )
