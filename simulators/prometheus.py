"""A simulator of Prometheus' HTTP API and Alertmanager's API v2, for the demo only.

The tests read a real Prometheus and a real Alertmanager (tests/support/peer_fixtures.py); this
one makes `make run` alive without them, and gives the faults a real server cannot show on
demand (hang, garbage, oversize, slow drip, 5xx, 401: see simulators/base.py). Faithful to the
envelope of docs/upstream-apis.md § 3:

    GET /api/v1/query        ?query&time                 -> vector (values as strings)
    GET /api/v1/query_range  ?query&start&end&step       -> matrix; 400 bad_data past 11,000 points
    GET /api/v1/alerts                                   -> {alerts: [...]} pending and firing now
    GET /api/v1/rules        [?type=alert]               -> {groups: [{name, interval, rules}]}
    GET /graph               ?g0.expr                    -> a page naming the expression (the demo's links)
    GET /api/v2/alerts       (Alertmanager)              -> [gettableAlert] with silenced/inhibited state
    GET /api/v2/silences     (Alertmanager)              -> [gettableSilence]

The demo's gauges are recognised by the metric their query reads (node CPU, node memory, pod
restarts, Traefik's requests) and move with time; `max_over_time(ALERTS{alertstate="firing"}[w])`
is answered from each alert's firing intervals. Alerts fire and resolve on schedules a demo
session sees (every 10 and 23 minutes), some fired earlier in the day, one fires all along and
is silenced, one is inhibited. Tests of the browser can fire and resolve an alert of their own
(`fire`, `resolve`) and pin a gauge (`pin`).
"""

from __future__ import annotations

import hashlib
import html
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .base import SimRequest, SimResponse, SimServer

MAX_POINTS = 11_000
RULE_INTERVAL = 15.0  # seconds between two evaluations of the demo's rule group
INF = math.inf


def go_float(value: float) -> str:
    """A sample value as Prometheus writes it (strconv.FormatFloat(v, 'f', -1, 64))."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(float(value))
    if "e" in text:
        text = f"{value:.17f}".rstrip("0").rstrip(".")
    return text.removesuffix(".0")


def rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fingerprint(labels: dict[str, str]) -> str:
    text = "\x00".join(f"{k}\x00{v}" for k, v in sorted(labels.items()))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass
class SimAlert:
    """An alerting rule with one alert, and when it fires.

    `period`/`length`/`phase`: fires for `length` seconds every `period`; `spans`: fixed
    intervals (absolute times, `INF` for "still firing"), the manual ones included.
    """

    name: str
    severity: str
    labels: dict[str, str]
    summary: str
    description: str
    expr: str
    duration: float = 0.0  # the rule's `for`
    period: float = 0.0
    length: float = 0.0
    phase: float = 0.0
    since: float = -INF  # the periodic firings begin here
    spans: list[tuple[float, float]] = field(default_factory=list)
    inhibited_by: str | None = None  # the name of the alert that inhibits it while firing
    # Not this Prometheus' alert: another source (Loki's ruler) posts it to Alertmanager, whose
    # list alone holds it, with this generatorURL; no rule, no ALERTS series, no /api/v1/alerts.
    generator: str = ""

    @property
    def all_labels(self) -> dict[str, str]:
        return {"alertname": self.name, "severity": self.severity, **self.labels}

    def intervals(self, start: float, end: float) -> list[tuple[float, float]]:
        """Its firing intervals that meet [start, end], in order."""
        found = [(a, b) for a, b in self.spans if b >= start and a <= end]
        if self.period > 0:
            k = math.floor((start - self.phase - self.length) / self.period)
            while True:
                begin = k * self.period + self.phase
                if begin > end:
                    break
                if begin + self.length >= start and begin >= self.since:
                    found.append((begin, begin + self.length))
                k += 1
        return sorted(found)

    def firing_at(self, moment: float) -> tuple[float, float] | None:
        """The interval it fires in at `moment`, or None."""
        for begin, finish in self.intervals(moment, moment):
            if begin <= moment < finish:
                return begin, finish
        return None


@dataclass
class SimSilence:
    id: str
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str

    def silences(self, labels: dict[str, str], moment: float) -> bool:
        active = self.starts_at <= moment < self.ends_at
        return active and all(labels.get(k) == v for k, v in self.matchers.items())


class MonitoringWorld:
    """The demo cluster's gauges and alerts, as functions of time; tests may change them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.alerts: dict[str, SimAlert] = {}
        self.silences: list[SimSilence] = []
        self.pinned: dict[str, float] = {}  # gauge name -> value, instead of its curve
        self.gauges: list[tuple[str, str, Callable[[float], float]]] = []  # (name, needle, curve)
        self.prometheus_url = "http://prometheus.invalid"
        # The envelope's `warnings` of every query (Thanos' "partial response", a PromQL
        # warning): a test sets them; Prometheus omits the key when there are none.
        self.warnings: list[str] = []

    # --- gauges ---------------------------------------------------------------------------------

    def add_gauge(self, name: str, needle: str, curve: Callable[[float], float]) -> None:
        """A gauge answering every query that contains `needle`."""
        self.gauges.append((name, needle, curve))

    def pin(self, name: str, value: float | None) -> None:
        """Hold gauge `name` at `value` (None: back to its curve)."""
        with self.lock:
            if value is None:
                self.pinned.pop(name, None)
            else:
                self.pinned[name] = value

    def evaluate(self, query: str, moment: float) -> list[tuple[dict[str, str], float]]:
        """The instant vector a query yields at `moment` (empty for a query nobody answers)."""
        alerts = re.fullmatch(r'\s*max_over_time\(ALERTS\{alertstate="firing"\}\[(\d+)s\]\)\s*', query)
        if alerts:
            return self._alerts_in_window(moment - int(alerts.group(1)), moment)
        if re.fullmatch(r'\s*ALERTS(\{alertstate="firing"\})?\s*', query):
            return self._alerts_in_window(moment, moment)
        with self.lock:
            for name, needle, curve in self.gauges:
                if needle in query:
                    return [({}, self.pinned.get(name, curve(moment)))]
        if re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", query):
            return [({}, float(query))]
        return []

    def _alerts_in_window(self, start: float, end: float) -> list[tuple[dict[str, str], float]]:
        found = []
        with self.lock:
            for alert in self.alerts.values():
                if alert.generator:
                    continue
                if any(a < end and b > start for a, b in alert.intervals(start, end)) or alert.firing_at(end):
                    found.append(({"__name__": "ALERTS", "alertstate": "firing", **alert.all_labels}, 1.0))
        return found

    # --- alerts ---------------------------------------------------------------------------------

    def add_alert(self, alert: SimAlert) -> SimAlert:
        with self.lock:
            self.alerts[alert.name] = alert
        return alert

    def fire(self, name: str, **labels: str) -> None:
        """Make alert `name` fire from now on (created if needed, severity "warning")."""
        now = self.clock()
        with self.lock:
            alert = self.alerts.get(name)
            if alert is None:
                alert = self.alerts[name] = SimAlert(
                    name, labels.pop("severity", "warning"), labels, f"{name} fired", "", "vector(1)"
                )
            if not any(b == INF for _, b in alert.spans):
                alert.spans.append((now, INF))

    def resolve(self, name: str) -> None:
        """End alert `name`'s manual firing now."""
        now = self.clock()
        with self.lock:
            alert = self.alerts[name]
            alert.spans = [(a, now if b == INF else b) for a, b in alert.spans]

    def firing(self, moment: float) -> list[tuple[SimAlert, float]]:
        """The alerts firing at `moment`, with when each became active (pending)."""
        found = []
        with self.lock:
            for alert in self.alerts.values():
                span = alert.firing_at(moment)
                if span is not None:
                    found.append((alert, span[0] - alert.duration))
        return found

    # --- API bodies -----------------------------------------------------------------------------

    def query_json(self, query: str, moment: float) -> dict[str, Any]:
        result = [
            {"metric": labels, "value": [round(moment, 3), go_float(value)]}
            for labels, value in self.evaluate(query, moment)
        ]
        return self._envelope({"resultType": "vector", "result": result})

    def _envelope(self, data: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"status": "success", "data": data}
        if self.warnings:
            body["warnings"] = list(self.warnings)
        return body

    def query_range_json(self, query: str, start: float, end: float, step: float) -> dict[str, Any]:
        series: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
        k = 0
        while start + k * step <= end + 1e-9:
            moment = start + k * step
            for labels, value in self.evaluate(query, moment):
                series.setdefault(tuple(sorted(labels.items())), []).append(
                    [round(moment, 3), go_float(value)]
                )
            k += 1
        result = [{"metric": dict(key), "values": values} for key, values in sorted(series.items())]
        return self._envelope({"resultType": "matrix", "result": result})

    def alerts_json(self) -> dict[str, Any]:
        now = self.clock()
        alerts = [
            {
                "labels": alert.all_labels,
                "annotations": {"summary": alert.summary, "description": alert.description},
                "state": "firing",
                "activeAt": rfc3339(active),
                "value": "1e+00",
            }
            for alert, active in self.firing(now)
            if not alert.generator
        ]
        return {"status": "success", "data": {"alerts": alerts}}

    def rules_json(self) -> dict[str, Any]:
        now = self.clock()
        firing = {alert.name: active for alert, active in self.firing(now)}
        with self.lock:
            rules = [
                {
                    "type": "alerting",
                    "name": alert.name,
                    "query": alert.expr,
                    "duration": alert.duration,
                    "keepFiringFor": 0,
                    "labels": {"severity": alert.severity},
                    "annotations": {"summary": alert.summary, "description": alert.description},
                    "state": "firing" if alert.name in firing else "inactive",
                    "health": "ok",
                    "evaluationTime": 0.000412,
                    "lastEvaluation": rfc3339(now - now % RULE_INTERVAL),
                    "alerts": [],
                }
                for alert in self.alerts.values()
                if not alert.generator
            ]
        group = {
            "name": "platform.rules",
            "file": "/etc/prometheus/rules/platform.yml",
            "interval": RULE_INTERVAL,
            "limit": 0,
            "rules": rules,
            "evaluationTime": 0.0021,
            "lastEvaluation": rfc3339(now - now % RULE_INTERVAL),
        }
        return {"status": "success", "data": {"groups": [group]}}

    def alertmanager_alerts_json(self) -> list[dict[str, Any]]:
        now = self.clock()
        firing = self.firing(now)
        names = {alert.name: alert for alert, _ in firing}
        found = []
        for alert, active in firing:
            labels = alert.all_labels
            silenced = [s.id for s in self.silences if s.silences(labels, now)]
            inhibitor = names.get(alert.inhibited_by or "")
            inhibited = [fingerprint(inhibitor.all_labels)] if inhibitor else []
            expression = quote(alert.expr, safe="")
            found.append(
                {
                    "labels": labels,
                    "annotations": {"summary": alert.summary, "description": alert.description},
                    "receivers": [{"name": "team-platform"}],
                    "fingerprint": fingerprint(labels),
                    "startsAt": rfc3339(active + alert.duration),
                    "updatedAt": rfc3339(now - now % RULE_INTERVAL),
                    "endsAt": rfc3339(now + 4 * RULE_INTERVAL),
                    "status": {
                        "state": "suppressed" if silenced or inhibited else "active",
                        "silencedBy": silenced,
                        "inhibitedBy": inhibited,
                        "mutedBy": [],
                    },
                    "generatorURL": alert.generator
                    or f"{self.prometheus_url}/graph?g0.expr={expression}&g0.tab=1",
                }
            )
        return found

    def silences_json(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [
            {
                "id": s.id,
                "status": {"state": "active" if s.starts_at <= now < s.ends_at else "expired"},
                "updatedAt": rfc3339(s.starts_at),
                "matchers": [
                    {"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in s.matchers.items()
                ],
                "startsAt": rfc3339(s.starts_at),
                "endsAt": rfc3339(s.ends_at),
                "createdBy": s.created_by,
                "comment": s.comment,
            }
            for s in self.silences
        ]


def _wave(period: float, phase: float = 0.0) -> Callable[[float], float]:
    return lambda t: math.sin(2 * math.pi * (t + phase) / period)


def demo_world(clock: Callable[[], float] = time.time) -> MonitoringWorld:
    """The demo's K3s cluster: gauges that move, alerts that fire and resolve, one silence."""
    world = MonitoringWorld(clock)
    started = clock()
    crash = world.add_alert(
        SimAlert(
            "KubePodCrashLooping",
            "warning",
            {"namespace": "taiga", "pod": "taiga-back-7d9c5b8f6-x2kqp", "container": "taiga-back"},
            "Le pod taiga/taiga-back-7d9c5b8f6-x2kqp redémarre en boucle",
            "Le conteneur taiga-back a redémarré 4 fois en 10 minutes (CrashLoopBackOff).",
            'max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff"}[5m]) >= 1',
            duration=60,
            period=600,
            length=240,
            phase=started % 600 - 420,  # fires 3 minutes into the session
            since=started - 1800,
        )
    )
    world.add_alert(
        SimAlert(
            "KubePodNotReady",
            "warning",
            {"namespace": "taiga", "pod": "taiga-back-7d9c5b8f6-x2kqp"},
            "Le pod taiga/taiga-back-7d9c5b8f6-x2kqp n’est pas prêt",
            "Inhibée tant que KubePodCrashLooping se déclenche pour ce pod.",
            'sum by (namespace, pod) (kube_pod_status_phase{phase=~"Pending|Unknown"}) > 0',
            duration=60,
            period=crash.period,
            length=crash.length - 30,
            phase=crash.phase + 30,
            since=crash.since,
            inhibited_by=crash.name,
        )
    )
    errors = world.add_alert(
        SimAlert(
            "TraefikHigh5xxRate",
            "critical",
            {"namespace": "kube-system", "service": "gitlab-webservice-default-8181@kubernetes"},
            "Trop d’erreurs 5xx sur l’ingress de GitLab",
            "Plus de 1 réponse 5xx par seconde depuis 2 minutes sur gitlab.example.org.",
            'sum by (service) (rate(traefik_service_requests_total{code=~"5.."}[2m])) > 1',
            duration=120,
            period=1380,
            length=180,
            phase=started % 1380 - 1200,  # fires 3 minutes into the session, for 3 minutes
            since=started - 2 * 3600,
        )
    )
    memory = world.add_alert(
        SimAlert(
            "NodeMemoryHighUtilization",
            "warning",
            {"instance": "k3s-agent-2:9100", "job": "node-exporter"},
            "Mémoire à 84\u00a0% sur k3s-agent-2",
            "La mémoire disponible du nœud k3s-agent-2 est sous 20\u00a0% depuis 15\u00a0minutes.",
            "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) > 80",
            duration=900,
            spans=[(started - 2 * 3600 - 600, INF)],
        )
    )
    world.add_alert(
        SimAlert(
            "KubeJobFailed",
            "warning",
            {"namespace": "gitlab", "job_name": "gitlab-backup-nightly-29131"},
            "La sauvegarde nocturne de GitLab a échoué",
            "Le job gitlab/gitlab-backup-nightly-29131 s’est terminé en échec.",
            "kube_job_failed > 0",
            spans=[(started - 15 * 3600, started - 14 * 3600 + 1200)],
        )
    )
    world.add_alert(
        SimAlert(
            "CertManagerCertExpirySoon",
            "info",
            {"namespace": "harbor", "name": "harbor-ingress-tls"},
            "Le certificat harbor-ingress-tls expire dans 14 jours",
            "cert-manager n’a pas encore pu le renouveler\u00a0; il réessaiera.",
            "certmanager_certificate_expiration_timestamp_seconds - time() < 14 * 86400",
            spans=[
                (started - 9 * 3600, started - 7 * 3600 - 1200),
                (started - 21 * 3600, started - 20 * 3600),
            ],
        )
    )
    world.add_alert(
        SimAlert(
            "KubeNodeNotReady",
            "critical",
            {"node": "k3s-agent-1"},
            "Le nœud k3s-agent-1 n’est pas prêt",
            "Le kubelet ne répond plus depuis 5 minutes.",
            'kube_node_status_condition{condition="Ready",status="true"} == 0',
            duration=300,
            spans=[(started - 5 * 3600 - 900, started - 5 * 3600)],
        )
    )
    world.add_alert(  # from Loki's ruler: Alertmanager holds it, this Prometheus knows nothing of it
        SimAlert(
            "GitLabErrorLogBurst",
            "warning",
            {"namespace": "gitlab", "app": "webservice"},
            "Rafale d’erreurs 5xx dans les journaux de GitLab",
            "Plus de 50 lignes « status=5xx » par minute dans les journaux du webservice.",
            'sum(count_over_time({app="webservice"} |= "status=5" [1m])) > 50',
            period=5400,
            length=1500,
            phase=started % 5400 - 600,
            generator="https://grafana.example.org/explore?left=loki",
        )
    )
    world.silences.append(
        SimSilence(
            "a4c1b7e2-5f3d-4f0e-9c61-0d2e8b7f1a33",
            {"alertname": memory.name, "instance": "k3s-agent-2:9100"},
            started - 1800,
            started + 2 * 3600,
            "marie.dupont",
            "Extension mémoire du nœud prévue ce soir",
        )
    )

    def firing_share(alert: SimAlert, t: float, span: float) -> float:
        """How much of the last `span` seconds `alert` fired (0..1)."""
        total = sum(min(b, t) - max(a, t - span) for a, b in alert.intervals(t - span, t))
        return max(0.0, total) / span

    cpu_wave, cpu_ripple = _wave(900), _wave(97, 13)
    world.add_gauge("cpu", "node_cpu_seconds_total", lambda t: 52 + 24 * cpu_wave(t) + 4 * cpu_ripple(t))
    mem_wave = _wave(1700, 200)
    world.add_gauge("memory", "node_memory_MemAvailable_bytes", lambda t: 74 + 9 * mem_wave(t))
    world.add_gauge(
        "restarts",
        "kube_pod_container_status_restarts_total",
        lambda t: round(14 * firing_share(crash, t, 3600)),
    )
    noise = _wave(61, 7)
    world.add_gauge(
        "ingress-5xx",
        "traefik_service_requests_total",
        lambda t: (1.4 + 0.3 * noise(t)) if errors.firing_at(t) else max(0.0, 0.03 + 0.02 * noise(t)),
    )
    return world


def _float_arg(request: SimRequest, name: str, default: float | None = None) -> float | None:
    text = request.arg(name)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        return None


def _bad_data(message: str) -> SimResponse:
    return SimResponse.json({"status": "error", "errorType": "bad_data", "error": message}, status=400)


def _balanced(query: str) -> bool:
    depth = 0
    for char in query:
        depth += {"(": 1, "{": 1, "[": 1, ")": -1, "}": -1, "]": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def make_servers(
    world: MonitoringWorld | None = None, prometheus_port: int = 0, alertmanager_port: int = 0
) -> tuple[SimServer, SimServer, MonitoringWorld]:
    """A Prometheus and an Alertmanager simulator on 127.0.0.1 sharing one world."""
    world = world or demo_world()
    # Go's http.NotFound, for a path neither serves (an API below a wrong prefix)
    not_found = SimResponse(404, b"404 page not found\n", {"Content-Type": "text/plain; charset=utf-8"})
    prometheus = SimServer("prometheus", port=prometheus_port, not_found=not_found)
    alertmanager = SimServer("alertmanager", port=alertmanager_port, not_found=not_found)
    world.prometheus_url = prometheus.url

    def query_of(request: SimRequest) -> str | SimResponse:
        query = request.arg("query")
        if not query:
            return _bad_data('invalid parameter "query": empty query')
        if not _balanced(query):
            return _bad_data('invalid parameter "query": 1:1: parse error: unclosed left parenthesis')
        return query

    @prometheus.route("GET", r"/api/v1/query")
    def query(request: SimRequest, match: re.Match[str]) -> SimResponse:
        text = query_of(request)
        if isinstance(text, SimResponse):
            return text
        moment = _float_arg(request, "time", world.clock())
        if moment is None:
            return _bad_data('invalid parameter "time": cannot parse to a valid timestamp')
        return SimResponse.json(world.query_json(text, moment))

    @prometheus.route("GET", r"/api/v1/query_range")
    def query_range(request: SimRequest, match: re.Match[str]) -> SimResponse:
        text = query_of(request)
        if isinstance(text, SimResponse):
            return text
        start, end, step = (_float_arg(request, n) for n in ("start", "end", "step"))
        if start is None or end is None or step is None or step <= 0:
            return _bad_data(
                'invalid parameter "step": zero or negative query resolution step widths are not accepted'
            )
        if end < start:
            return _bad_data('invalid parameter "end": end timestamp must not be before start time')
        if (end - start) / step > MAX_POINTS:
            return _bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. "
                "Try decreasing the query resolution (?step=XX)"
            )
        return SimResponse.json(world.query_range_json(text, start, end, step))

    @prometheus.route("GET", r"/graph")
    def graph(request: SimRequest, match: re.Match[str]) -> SimResponse:
        """A stand-in for Prometheus' graph page, where the cards' links lead in the demo."""
        expression = html.escape(request.arg("g0.expr") or "")
        page = (
            "<!doctype html><title>Prometheus simulator</title>"
            "<p>The Prometheus simulator draws no graph. The real one would show: "
            f"<code>{expression}</code></p>"
        )
        return SimResponse(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})

    @prometheus.route("GET", r"/api/v1/alerts")
    def alerts(request: SimRequest, match: re.Match[str]) -> SimResponse:
        return SimResponse.json(world.alerts_json())

    @prometheus.route("GET", r"/api/v1/rules")
    def rules(request: SimRequest, match: re.Match[str]) -> SimResponse:
        return SimResponse.json(world.rules_json())

    @alertmanager.route("GET", r"/api/v2/alerts")
    def held(request: SimRequest, match: re.Match[str]) -> SimResponse:
        return SimResponse.json(world.alertmanager_alerts_json())

    @alertmanager.route("GET", r"/api/v2/silences")
    def silences(request: SimRequest, match: re.Match[str]) -> SimResponse:
        return SimResponse.json(world.silences_json())

    return prometheus, alertmanager, world
