"""The metrics card: configured PromQL gauges, each with thresholds and a sparkline of the last hour.

One part per gauge, so that a query that fails (refused, timed out), returns nothing, returns
several series where one was expected, or returns NaN or ±Inf affects only its own gauge and
says which of these it is. A gauge with a sparkline makes one range query (its last point is the
value now, evaluated at the same instant as an instant query would be); without one, one
instant query.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal
from urllib.parse import quote

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...config import LinkUrl, LocalizedText, PortalConfig, Slug, WidgetSection
from ...identity import User
from ..contract import Part, PartResult, Problem, Widget, WidgetContext, WidgetView
from . import format as fmt
from .client import PrometheusClient, Sample, Series, choose_step
from .upstream import PROMETHEUS

Status = Literal["ok", "warn", "critical", "unknown"]
Kind = Literal["ok", "no_data", "several", "not_finite"]


class Gauge(BaseModel):
    """One gauge of widgets.metrics.gauges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug | None = None  # stable name of the gauge (cache key); default: from the label
    label: LocalizedText = Field(min_length=1)
    query: str = Field(min_length=1, max_length=4000)  # PromQL: one series (one number) expected
    unit: fmt.Unit = "count"
    decimals: int = Field(1, ge=0, le=6)
    # Thresholds. direction "above": higher is worse (CPU); "below": lower is worse (free space).
    warn: float | None = None
    critical: float | None = None
    direction: Literal["above", "below"] = "above"
    # The scale of the gauge or bar; default 0 to 100 for percent, else up to the thresholds.
    min: float | None = None
    max: float | None = None
    display: Literal["gauge", "bar"] = "bar"
    sparkline: bool = True  # the last hour (widgets.metrics.sparkline_minutes), drawn on the server
    # Where the gauge's name leads (a Grafana panel); default: Prometheus' graph of its query.
    link: LinkUrl | None = None

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> Gauge:
        if self.warn is not None and self.critical is not None:
            worse = self.critical >= self.warn if self.direction == "above" else self.critical <= self.warn
            if not worse:
                side = "at or above" if self.direction == "above" else "at or below"
                raise ValueError(f"critical must be {side} warn (direction: {self.direction})")
        if self.min is not None and self.max is not None and not self.max > self.min:
            raise ValueError("max must be greater than min")
        return self

    @property
    def slug(self) -> str:
        if self.id:
            return self.id
        text = (
            self.label
            if isinstance(self.label, str)
            else self.label.get("en") or next(iter(self.label.values()))
        )
        return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:63] or "gauge"

    def label_in(self, language: str) -> str:
        if isinstance(self.label, str):
            return self.label
        return self.label.get(language) or next(iter(self.label.values()))  # type: ignore[call-overload]


# Defaults for K3s with node-exporter, kube-state-metrics and Traefik's metrics.
DEFAULT_GAUGES = (
    Gauge(
        id="cpu",
        label={"en": "Cluster CPU", "fr": "CPU du cluster"},
        query='100 * (1 - avg(rate(node_cpu_seconds_total{mode="idle"}[5m])))',
        unit="percent",
        decimals=1,
        warn=75,
        critical=90,
        display="gauge",
    ),
    Gauge(
        id="memory",
        label={"en": "Cluster memory", "fr": "Mémoire du cluster"},
        query="100 * (1 - sum(node_memory_MemAvailable_bytes) / sum(node_memory_MemTotal_bytes))",
        unit="percent",
        decimals=1,
        warn=80,
        critical=92,
        display="gauge",
    ),
    Gauge(
        id="restarts",
        label={"en": "Pod restarts (1 h)", "fr": "Redémarrages de pods (1 h)"},
        query="sum(increase(kube_pod_container_status_restarts_total[1h]))",
        unit="count",
        decimals=0,
        warn=3,
        critical=10,
    ),
    Gauge(
        id="ingress-5xx",
        label={"en": "Ingress 5xx", "fr": "Erreurs 5xx de l'ingress"},
        # 0 while Traefik reports requests but none failed; no data when Traefik reports nothing.
        query=(
            'sum(rate(traefik_service_requests_total{code=~"5.."}[5m]))'
            " or (sum(rate(traefik_service_requests_total[5m])) * 0)"
        ),
        unit="per_second",
        decimals=2,
        warn=0.1,
        critical=1,
    ),
)


class MetricsSettings(WidgetSection):
    """widgets.metrics: the gauges, and the span of their sparklines."""

    gauges: tuple[Gauge, ...] = DEFAULT_GAUGES
    sparkline_minutes: int = Field(60, ge=5, le=1440)
    sparkline_points: int = Field(60, ge=10, le=720)  # points of a sparkline (the range query's step)

    @model_validator(mode="after")
    def _unique_ids(self) -> MetricsSettings:
        seen: dict[str, int] = {}
        for index, gauge in enumerate(self.gauges):
            if gauge.slug in seen:
                raise ValueError(
                    f"gauges[{index}]: id {gauge.slug!r} is already used by gauges[{seen[gauge.slug]}]"
                )
            seen[gauge.slug] = index
        return self


@dataclass(frozen=True)
class Reading:
    """What one gauge's query answered: the value now and the last hour, or why there is no value.

    kind: ok (one series, a finite value), no_data (no series now), several (more than one
    series now: `series` says how many), not_finite (NaN or ±Inf: `value` holds it).
    """

    kind: Kind
    value: float | None
    series: int
    points: tuple[tuple[float, float], ...]  # the last hour, finite values only
    start: float
    end: float
    step: float
    partial: bool = False  # Prometheus warned that its answer may be incomplete


def reading_of_range(found: Sequence[Series], start: float, end: float, step: float) -> Reading:
    """A range query's answer as a gauge reads it: the series that has a point at `end` is current."""
    current = [s for s in found if s.points and s.points[-1][0] >= end - step / 2]
    if len(current) > 1:
        return Reading("several", None, len(current), (), start, end, step)
    chosen = current[0] if current else (found[0] if len(found) == 1 else None)
    points = tuple((t, v) for t, v in chosen.points if math.isfinite(v)) if chosen else ()
    if not current:
        return Reading("no_data", None, 0, points, start, end, step)
    value = current[0].points[-1][1]
    kind: Kind = "ok" if math.isfinite(value) else "not_finite"
    return Reading(kind, value, 1, points, start, end, step)


def read_gauge(client: PrometheusClient, gauge: Gauge, minutes: int, count: int) -> Reading:
    """One gauge's fetch: a range query over the sparkline's span, or an instant query."""
    deadline = time.monotonic() + client.limits.timeout
    end = round(time.time(), 3)
    start = end - minutes * 60
    step = choose_step(start, end, max(1.0, math.ceil(minutes * 60 / count)))
    warnings: list[str] = []
    if gauge.sparkline:
        found = client.query_range(gauge.query, start, end, step, deadline, warnings)
        reading = reading_of_range(found, start, end, step)
    else:
        reading = reading_of_instant(
            client.query(gauge.query, deadline=deadline, warnings=warnings), start, end, step
        )
    return replace(reading, partial=bool(warnings))


def reading_of_instant(samples: Sequence[Sample], start: float, end: float, step: float) -> Reading:
    """An instant query's answer as a gauge reads it."""
    if not samples:
        return Reading("no_data", None, 0, (), start, end, step)
    if len(samples) > 1:
        return Reading("several", None, len(samples), (), start, end, step)
    value = samples[0].value
    return Reading("ok" if math.isfinite(value) else "not_finite", value, 1, (), start, end, step)


# --- what the template draws -----------------------------------------------------------------


@dataclass(frozen=True)
class GaugeView:
    """One gauge as the card shows it (built per language from the reading and the settings)."""

    key: str
    label: str
    display: str
    kind: Kind | None  # None: no reading yet (the problem says why)
    status: Status
    value: str  # the value with its unit, or "" when there is none
    special: str  # "NaN", "+Inf", "-Inf" for a value that is not a number
    series: int
    fill: float  # where the value sits on the scale, 0..1 (bar width / arc end)
    arc: str  # the gauge's value arc (`d`), "" when empty
    ticks: tuple[tuple[str, tuple[str, ...]], ...]  # (warn | critical, geometry) on the scale
    lines: tuple[str, ...]  # the sparkline's polylines
    low: str  # the sparkline's min and max, with unit
    high: str
    warn: str  # the thresholds with their unit ("" when not set)
    critical: str
    direction: str
    stale: bool
    pending: bool  # its first answer has not come yet (the card asks again soon)
    problem: Problem | None
    # No series now, but the sparkline has one: its last value and when (a target gone away).
    last: tuple[str, datetime] | None = None
    partial: bool = False  # Prometheus warned that its answer may be incomplete
    link: str = ""  # its graph (Prometheus) or the dashboard the configuration names
    linked_to: str = "prometheus"  # prometheus | elsewhere


def status_of(value: float, gauge: Gauge) -> Status:
    def beyond(limit: float | None) -> bool:
        if limit is None:
            return False
        return value >= limit if gauge.direction == "above" else value <= limit

    if beyond(gauge.critical):
        return "critical"
    if beyond(gauge.warn):
        return "warn"
    return "ok"


def beyond_every_limit(value: float, gauge: Gauge) -> bool:
    """An infinity on the side of a gauge's thresholds (+Inf when higher is worse, -Inf when
    lower is); a gauge without thresholds cannot say how bad it is."""
    limited = gauge.warn is not None or gauge.critical is not None
    return limited and math.isinf(value) and (value > 0) == (gauge.direction == "above")


def scale_of(gauge: Gauge, reading: Reading | None) -> tuple[float, float]:
    """The gauge's scale: configured, else 0–100 for percent, else up to the thresholds or the data."""
    if gauge.unit == "percent":
        low, high = 0.0, 100.0
    else:
        low = 0.0
        candidates = [x for x in (gauge.warn, gauge.critical) if x is not None]
        high = max(candidates) * 1.25 if candidates else 0.0
        if reading is not None:
            seen = [v for _, v in reading.points] + ([reading.value] if reading.value is not None else [])
            finite = [v for v in seen if math.isfinite(v)]
            if finite:
                low = min(low, *finite)
                high = max(high, max(finite) * 1.1)
        if not high > low:
            high = low + 1.0
    return (gauge.min if gauge.min is not None else low, gauge.max if gauge.max is not None else high)


def graph_link(prometheus: str, gauge: Gauge, minutes: int) -> str:
    """Prometheus' graph of the gauge's query over the sparkline's minutes (`g0.tab=0`: the graph;
    Prometheus 3's interface reads the same parameters)."""
    return f"{prometheus}/graph?g0.expr={quote(gauge.query, safe='')}&g0.tab=0&g0.range_input={minutes}m"


def gauge_view(gauge: Gauge, part: PartResult[Any] | None, language: str, link: str = "") -> GaugeView:
    reading: Reading | None = part.value if part is not None else None
    low, high = scale_of(gauge, reading)
    value = special = ""
    status: Status = "unknown"
    fill = 0.0
    if reading is not None and reading.value is not None:
        if reading.kind == "ok":
            limits = [limit for limit in (gauge.warn, gauge.critical) if limit is not None]
            value = fmt.reading_text(reading.value, gauge.unit, gauge.decimals, limits)
            status = status_of(reading.value, gauge)
            fill = fmt.fraction(reading.value, low, high)
        else:
            special = fmt.special_text(reading.value)
            if beyond_every_limit(reading.value, gauge):
                # histogram_quantile() answers +Inf when the quantile lies in the last bucket: a
                # latency past every bucket is as bad as the gauge can say, not "no value".
                status = status_of(reading.value, gauge)
                fill = 1.0
    ticks: list[tuple[str, tuple[str, ...]]] = []
    for name, limit in (("warn", gauge.warn), ("critical", gauge.critical)):
        if limit is not None and low <= limit <= high:
            where = fmt.fraction(limit, low, high)
            geometry = fmt.arc_tick(where) if gauge.display == "gauge" else (f"{where * 100:.2f}",)
            ticks.append((name, geometry))
    lines: tuple[str, ...] = ()
    spark_low = spark_high = ""
    if reading is not None and gauge.sparkline:
        lines, least, most = fmt.sparkline(reading.points, reading.start, reading.end, reading.step)
        if least is not None and most is not None:
            spark_low = fmt.value_text(least, gauge.unit, gauge.decimals)
            spark_high = fmt.value_text(most, gauge.unit, gauge.decimals)

    def limit_text(limit: float | None) -> str:
        return fmt.limit_text(limit, gauge.unit, gauge.decimals) if limit is not None else ""

    return GaugeView(
        key=gauge.slug,
        label=gauge.label_in(language),
        display=gauge.display,
        kind=reading.kind if reading is not None else None,
        status=status,
        value=value,
        special=special,
        series=reading.series if reading is not None else 0,
        fill=fill,
        arc=fmt.arc_path(0.0, fill) if gauge.display == "gauge" else "",
        ticks=tuple(ticks),
        lines=lines,
        low=spark_low,
        high=spark_high,
        warn=limit_text(gauge.warn),
        critical=limit_text(gauge.critical),
        direction=gauge.direction,
        stale=part.stale if part is not None else False,
        pending=part is not None and part.result.state == "pending" and reading is None,
        problem=part.problem if part is not None else None,
        last=last_seen(reading, gauge),
        partial=reading.partial if reading is not None else False,
        link=str(gauge.link) if gauge.link else link,
        linked_to="elsewhere" if gauge.link else "prometheus",
    )


def last_seen(reading: Reading | None, gauge: Gauge) -> tuple[str, datetime] | None:
    """The last value the sparkline holds, with its time, when the query has no series now."""
    if reading is None or reading.kind != "no_data" or not reading.points:
        return None
    at, value = reading.points[-1]
    return fmt.value_text(value, gauge.unit, gauge.decimals), datetime.fromtimestamp(at, UTC)


class MetricsWidget(Widget):
    """A few numbers that say how the platform is doing, from Prometheus."""

    slug = "metrics"
    title = _l("Quick metrics")
    icon = "gauge"
    scope = "shared"
    upstreams = (PROMETHEUS,)
    settings_model = MetricsSettings

    def is_configured(self, settings: WidgetSection, config: PortalConfig) -> bool:
        assert isinstance(settings, MetricsSettings)
        return super().is_configured(settings, config) and bool(settings.gauges)

    def parts(self, ctx: WidgetContext, user: User) -> Sequence[Part[Reading]]:
        """One part per gauge: its own cache key, its own failure."""
        settings = ctx.settings
        assert isinstance(settings, MetricsSettings)
        client = ctx.client(PROMETHEUS)
        return [
            Part(
                gauge.slug,
                gauge.slug,
                PROMETHEUS,
                partial(read_gauge, client, gauge, settings.sparkline_minutes, settings.sparkline_points),
            )
            for gauge in settings.gauges
        ]

    def is_empty(self, view: WidgetView) -> bool:
        return False  # a gauge with no data says so itself

    def decorate(self, view: WidgetView, ctx: WidgetContext, user: User) -> str:
        """Each gauge's text and drawing, in the user's language."""
        settings = ctx.settings
        assert isinstance(settings, MetricsSettings)
        language = str(get_locale())
        prometheus = ctx.client(PROMETHEUS).public_url
        minutes = settings.sparkline_minutes
        gauges = [
            gauge_view(gauge, view.part(gauge.slug), language, graph_link(prometheus, gauge, minutes))
            for gauge in settings.gauges
        ]
        view.extra["gauges"] = gauges
        # One problem for every gauge (Prometheus is down): said once, above them.
        reasons = {g.problem.reason for g in gauges if g.problem is not None}
        view.extra["shared_problem"] = (
            next(g.problem for g in gauges if g.problem)
            if len(reasons) == 1 and all(g.problem for g in gauges)
            else None
        )
        view.extra["minutes"] = settings.sparkline_minutes
        view.extra["track"] = fmt.arc_path(0.0, 1.0)
        return ""
