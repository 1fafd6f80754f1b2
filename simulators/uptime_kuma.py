"""A simulator of Uptime Kuma's public status-page API (see docs/upstream-apis.md § 2.1).

    GET /api/status-page/{slug}
        -> {config, incidents | incident, publicGroupList, maintenanceList}
    GET /api/status-page/heartbeat/{slug}
        -> {heartbeatList: {id: [beats oldest→newest]}, uptimeList: {"id_24": 0..1}}

Data changes with time (a monitor flaps, one is in maintenance, one is down with an incident).
A page can answer in the 2.1+ shape (`incidents`, a list) or the older one (`incident`).
Slugs are lower-cased as in 2.x; an unknown slug is 404 {"status":"fail","msg":"Status Page Not Found"}
on the page route and empty lists on the heartbeat route. Beat times are UTC without a zone.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .base import SimRequest, SimResponse, SimServer

DOWN, UP, PENDING, MAINTENANCE = 0, 1, 2, 3
BEAT_INTERVAL = 30  # seconds between two heartbeats
BEATS_RETURNED = 100  # 2.x returns the last 100 beats
FLAP_PERIOD = 180  # a flapping monitor: up 105 s, pending 30 s, down 45 s


@dataclass
class SimMonitor:
    id: int
    name: str
    behaviour: str = "up"  # up | down | pending | maintenance | flapping | silent (no beats yet)
    type: str = "http"
    url: str | None = None
    base_ping: float = 40.0


@dataclass
class SimPage:
    slug: str
    title: str
    groups: list[tuple[str, list[int]]]
    legacy: bool = False  # answer with `incident` (Uptime Kuma <= 2.0) instead of `incidents`
    incidents: list[dict[str, Any]] = field(default_factory=list)
    maintenances: list[dict[str, Any]] = field(default_factory=list)


def kuma_time(moment: float) -> str:
    """UTC without zone, milliseconds: how Uptime Kuma serialises beat times."""
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def kuma_date(moment: float) -> str:
    """UTC without zone or milliseconds: how incident dates come out of the database."""
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


class KumaWorld:
    """The monitors and status pages the simulator serves; tests may change them at will."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.monitors: dict[int, SimMonitor] = {}
        self.pages: dict[str, SimPage] = {}
        self.group_ids: dict[
            str, int
        ] = {}  # a group keeps its id when pages are reordered, as in Kuma's database

    def add_monitor(self, monitor: SimMonitor) -> SimMonitor:
        self.monitors[monitor.id] = monitor
        return monitor

    def add_page(self, page: SimPage) -> SimPage:
        self.pages[page.slug.lower()] = page
        return page

    # --- behaviour over time ------------------------------------------------------------

    @staticmethod
    def status_at(monitor: SimMonitor, moment: float) -> int:
        behaviour = monitor.behaviour
        if behaviour == "flapping":
            phase = moment % FLAP_PERIOD
            return UP if phase < 105 else PENDING if phase < 135 else DOWN
        return {"up": UP, "down": DOWN, "pending": PENDING, "maintenance": MAINTENANCE}.get(behaviour, UP)

    @staticmethod
    def ping_at(monitor: SimMonitor, moment: float, status: int) -> int | None:
        if status in (DOWN, MAINTENANCE):
            return None
        wave = 15 * math.sin(moment / 47 + monitor.id) + 6 * math.sin(moment / 13 + 2 * monitor.id)
        slow = 2.5 if status == PENDING else 1.0
        return max(1, round((monitor.base_ping + wave) * slow))

    @staticmethod
    def uptime_24h(monitor: SimMonitor) -> float:
        return {
            "up": 0.9995 - 0.0004 * (monitor.id % 3),
            "down": 0.8712,
            "pending": 0.9731,
            "maintenance": 1.0,
            "flapping": round(105 / FLAP_PERIOD, 4),
        }.get(monitor.behaviour, 1.0)

    # --- API bodies -----------------------------------------------------------------------

    def page_json(self, slug: str) -> dict[str, Any] | None:
        page = self.pages.get(slug.lower())
        if page is None:
            return None
        groups = []
        for index, (name, ids) in enumerate(page.groups, start=1):
            group_id = self.group_ids.setdefault(f"{page.slug}/{name}", len(self.group_ids) + 1)
            monitor_list = []
            for monitor_id in ids:
                monitor = self.monitors[monitor_id]
                entry: dict[str, Any] = {
                    "id": monitor.id,
                    "name": monitor.name,
                    "sendUrl": 1 if monitor.url else 0,
                    "type": monitor.type,
                }
                if monitor.url:
                    entry["url"] = monitor.url
                monitor_list.append(entry)
            groups.append({"id": group_id, "name": name, "weight": index, "monitorList": monitor_list})
        body: dict[str, Any] = {
            "config": {
                "slug": page.slug,
                "title": page.title,
                "description": None,
                "icon": "/icon.svg",
                "autoRefreshInterval": 300,
                "theme": "auto",
                "published": True,
                "showTags": False,
                "customCSS": "body {\n  \n}\n",
                "footerText": None,
                "showPoweredBy": True,
                "showCertificateExpiry": False,
            },
            "publicGroupList": groups,
            "maintenanceList": page.maintenances,
        }
        if page.legacy:
            body["incident"] = page.incidents[0] if page.incidents else None
        else:
            body["incidents"] = page.incidents
        return body

    def heartbeat_json(self, slug: str) -> dict[str, Any]:
        page = self.pages.get(slug.lower())
        if page is None:
            return {"heartbeatList": {}, "uptimeList": {}}
        now = self.clock()
        latest = math.floor(now / BEAT_INTERVAL) * BEAT_INTERVAL
        beats: dict[str, list[dict[str, Any]]] = {}
        uptimes: dict[str, float] = {}
        for _, ids in page.groups:
            for monitor_id in ids:
                monitor = self.monitors[monitor_id]
                if monitor.behaviour == "silent":
                    continue  # no beat since start: no entry at all
                history = []
                for k in range(BEATS_RETURNED - 1, -1, -1):
                    moment = latest - k * BEAT_INTERVAL + (monitor.id % 7) * 0.137
                    status = self.status_at(monitor, moment)
                    history.append(
                        {
                            "status": status,
                            "time": kuma_time(moment),
                            "msg": "",
                            "ping": self.ping_at(monitor, moment, status),
                        }
                    )
                beats[str(monitor.id)] = history
                uptimes[f"{monitor.id}_24"] = self.uptime_24h(monitor)
        return {"heartbeatList": beats, "uptimeList": uptimes}


def demo_world(clock: Callable[[], float] = time.time) -> KumaWorld:
    """The demo's platform: a flapping Taiga, Mattermost in maintenance, SonarQube down."""
    world = KumaWorld(clock)
    for monitor in (
        SimMonitor(1, "GitLab", url="https://gitlab.example.org", base_ping=48),
        SimMonitor(2, "Keycloak", base_ping=22),
        SimMonitor(3, "Harbor", base_ping=61),
        SimMonitor(4, "Taiga", behaviour="flapping", url="https://taiga.example.org", base_ping=95),
        SimMonitor(5, "Mattermost", behaviour="maintenance", base_ping=35),
        SimMonitor(6, "HedgeDoc", base_ping=29),
        SimMonitor(7, "SonarQube", behaviour="down", base_ping=120),
        SimMonitor(8, "Vault", base_ping=18),
        SimMonitor(9, "Argo CD", base_ping=44),
        SimMonitor(10, "Grafana", base_ping=38),
        SimMonitor(11, "Prometheus", base_ping=12, type="keyword"),
        SimMonitor(12, "Alertmanager", base_ping=9),
        SimMonitor(13, "Ingress Traefik", base_ping=6, type="port"),
    ):
        world.add_monitor(monitor)
    started = clock()
    world.add_page(
        SimPage(
            slug="platform",
            title="Plateforme",
            groups=[
                ("Forge & livraison", [1, 3, 9, 2]),
                ("Collaboration", [4, 5, 6]),
                ("Qualité & sécurité", [7, 8]),
            ],
            incidents=[
                {
                    "id": 3,
                    "style": "danger",
                    "title": "SonarQube indisponible",
                    # Markdown, as Uptime Kuma renders it on its own status page.
                    "content": "Le serveur d’analyse ne répond plus depuis la mise à jour en **10.7**.\n\n"
                    "- L’équipe plateforme enquête\u00a0; suivi dans "
                    "[le canal *incidents*](https://mattermost.example.org/platform/channels/incidents).\n"
                    "- Les pipelines sautent l’étape `sonar-scan` en attendant.",
                    "pin": True,
                    "active": True,
                    "createdDate": kuma_date(started - 2 * 3600 - 17 * 60),
                    "lastUpdatedDate": kuma_date(started - 40 * 60),
                    "status_page_id": 1,
                }
            ],
            maintenances=[
                {
                    "id": 1,
                    "title": "Mise à jour de Mattermost",
                    "description": "Passage en **version 10**\u00a0: messagerie indisponible "
                    "jusqu’à 14\u00a0h.",
                    "strategy": "single",
                    "intervalDay": 1,
                    "active": True,
                    "dateRange": [kuma_date(started - 1800), kuma_date(started + 7200)],
                    "timeRange": [{"hours": 0, "minutes": 0}, {"hours": 0, "minutes": 0}],
                    "weekdays": [],
                    "daysOfMonth": [],
                    "timeslotList": [],
                    "cron": "",
                    "duration": 9000,
                    "status": "under-maintenance",
                    "timezoneOption": "SAME_AS_SERVER",
                }
            ],
        )
    )
    world.add_page(
        SimPage(
            slug="observability",
            title="Observabilité",
            groups=[("Supervision", [10, 11, 12, 13])],
            legacy=True,  # an Uptime Kuma 1.23 page: `incident`, a single object or null
        )
    )
    return world


_SLUG = r"(?P<slug>[^/]+)"


def make_server(world: KumaWorld | None = None, port: int = 0) -> tuple[SimServer, KumaWorld]:
    """An Uptime Kuma simulator on 127.0.0.1 (port 0: any free port)."""
    world = world or demo_world()
    # sendHttpError's 404 (docs/upstream-apis.md § 2.1)
    not_found = SimResponse.json({"status": "fail", "msg": "Status Page Not Found"}, 404)
    server = SimServer("uptime-kuma", port=port, not_found=not_found)

    @server.route("GET", rf"/api/status-page/heartbeat/{_SLUG}")
    def heartbeat(request: SimRequest, match: re.Match[str]) -> SimResponse:
        return SimResponse.json(world.heartbeat_json(match["slug"]))

    @server.route("GET", rf"/api/status-page/{_SLUG}")
    def status_page(request: SimRequest, match: re.Match[str]) -> SimResponse:
        body = world.page_json(match["slug"])
        if body is None:
            return SimResponse.json({"status": "fail", "msg": "Status Page Not Found"}, status=404)
        return SimResponse.json(body)

    return server, world
