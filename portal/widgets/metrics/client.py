"""Prometheus' HTTP API (`/api/v1`): instant and range queries, active alerts, alerting rules.

Pure Python, no Flask (see docs/upstream-apis.md § 3). Every answer is the envelope
`{"status": "success", "data": ...}`; sample values are strings because NaN and ±Inf are
possible, and are parsed to floats here (NaN and ±Inf included: the widget says which). A range
query's step is chosen so that it never asks for more than Prometheus' 11,000 points per series
(it refuses more with 400 bad_data). An error envelope maps onto the `UpstreamError` hierarchy:
`bad_data` (400) and `execution` (422) are `UpstreamRejected`, the query's fault (its own card
part fails, the circuit stays closed), with a reason that names the kind of error; Prometheus'
own text goes to the log only.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from ...upstreams.errors import N_, Reason, UpstreamBadResponse, UpstreamRejected
from ...upstreams.http import BoundedJsonClient, HttpLimits, require

log = logging.getLogger(__name__)

UPSTREAM = "Prometheus"
MAX_POINTS = 11_000  # per series of a range query (Prometheus' api.go)

# What each errorType of a refused query means, for users; anything else is generic.
_REFUSALS = {
    "bad_data": N_("%(upstream)s refused the query: it is not valid PromQL"),
    "execution": N_("%(upstream)s could not evaluate the query"),
    "timeout": N_("%(upstream)s gave up evaluating the query (timeout)"),
    "canceled": N_("%(upstream)s canceled the query"),
    "not_acceptable": N_("%(upstream)s refused the query (not acceptable)"),
}


def parse_value(text: Any) -> float:
    """A sample value as Prometheus writes it ("0.93", "1e+00", "NaN", "+Inf", "-Inf")."""
    if not isinstance(text, str):
        raise ValueError(f"a sample value is a string, not {type(text).__name__}")
    return float(text)  # float() reads NaN, +Inf, -Inf and Go's exponent forms


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_rfc3339(text: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 time (nanoseconds cut to micro); None for Go's zero time."""
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return None
    cleaned = _FRACTION.sub(lambda m: m.group(1), text.strip()).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(cleaned).timestamp()
    except ValueError:
        return None


def choose_step(start: float, end: float, step: float, max_points: int = MAX_POINTS) -> float:
    """`step`, or the smallest whole step that keeps (end - start) / step within the point limit."""
    span = max(0.0, end - start)
    needed = math.ceil(span / max_points) if span else 1
    return float(max(step, needed, 1))


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector (or a scalar, without labels) at one time."""

    labels: dict[str, str]
    value: float
    at: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and its (time, value) points, oldest first."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ActiveAlert:
    """An alert pending or firing now (`/api/v1/alerts`)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # "pending" | "firing"
    active_at: float | None  # when it became pending (Unix seconds)
    value: float | None


@dataclass(frozen=True)
class AlertRule:
    """An alerting rule (`/api/v1/rules?type=alert`)."""

    group: str
    name: str
    query: str
    duration: float  # the rule's `for`, seconds
    labels: dict[str, str]
    annotations: dict[str, str]  # templates, as written in the rule
    health: str


@dataclass(frozen=True)
class RuleGroup:
    name: str
    interval: float  # seconds between two evaluations
    rules: tuple[AlertRule, ...]


def _labels(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if isinstance(v, str | int | float)}


def _number(raw: Any, default: float = 0.0) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    return default


class MonitoringClient:
    """What the Prometheus and Alertmanager clients share: a bounded JSON client with credentials.

    `headers` carries the credentials (a bearer token or basic auth), made by the upstream's
    factory; `public_url` is the tool as browsers reach it, for the card's links.
    """

    upstream = "Prometheus"

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        timeout: HttpLimits | None = None,
        verify: bool | str = True,
        public_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.public_url = (public_url or base_url).rstrip("/")
        self.limits = timeout or HttpLimits()
        self._http = BoundedJsonClient(self.upstream, session, self.limits, verify, headers)


class PrometheusClient(MonitoringClient):
    """Reads one Prometheus (or a compatible API: Thanos, Mimir, VictoriaMetrics' Prometheus API)."""

    upstream = UPSTREAM

    # --- calls ----------------------------------------------------------------------------------

    def _data(
        self,
        path: str,
        params: Mapping[str, Any] | None,
        deadline: float | None,
        warnings: list[str] | None = None,
    ) -> Any:
        """The `data` of a successful envelope; a refused query says why, in words. The envelope's
        `warnings` (an answer that may be incomplete: a store of Thanos or Mimir away, a limit
        reached) go to the log, and into `warnings` when given."""
        try:
            body = self._http.get(f"{self.base_url}/api/v1/{path}", params=params, deadline=deadline)
        except UpstreamRejected as exc:
            raise self._refused(exc) from exc
        said = body.get("warnings") if isinstance(body, dict) else None
        # Before Prometheus 2.54 its PromQL infos ("metric might not be a counter") came here too.
        texts = (
            [str(text)[:300] for text in said[:5] if not str(text).startswith("PromQL info")]
            if isinstance(said, list)
            else []
        )
        if texts:
            log.warning(
                "Prometheus warned that its answer may be incomplete",
                extra={"event": "prometheus_warnings", "path": path, "warnings": texts},
            )
            if warnings is not None:
                warnings.extend(texts)
        status = require(body, "status", str, UPSTREAM)
        if status != "success":
            kind = body.get("errorType") if isinstance(body, dict) else None
            raise UpstreamBadResponse(
                UPSTREAM,
                Reason.of(N_("%(upstream)s answered with an error"), upstream=UPSTREAM),
                f"GET /api/v1/{path}: status {status!r}, errorType {kind!r}",
            )
        return require(body, "data", (dict, list), UPSTREAM)

    @staticmethod
    def _refused(exc: UpstreamRejected) -> UpstreamRejected:
        body = exc.body if isinstance(exc.body, dict) else {}
        kind = body.get("errorType")
        message = _REFUSALS.get(kind) if isinstance(kind, str) else None
        if message is None:
            reason = Reason.of(
                N_("%(upstream)s refused the query (HTTP %(status)s)"), upstream=UPSTREAM, status=exc.status
            )
        else:
            reason = Reason.of(message, upstream=UPSTREAM)
        error = str(body.get("error", ""))[:500]
        return UpstreamRejected(UPSTREAM, reason, f"{exc.detail}: {kind}: {error}", exc.status or 400, None)

    def query(
        self,
        promql: str,
        at: float | None = None,
        deadline: float | None = None,
        warnings: list[str] | None = None,
    ) -> tuple[Sample, ...]:
        """An instant query: each series of the vector, or the scalar as one sample without labels."""
        params: dict[str, Any] = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._data("query", params, deadline, warnings)
        kind = require(data, "resultType", str, UPSTREAM)
        result = require(data, "result", list, UPSTREAM)
        if kind == "scalar":
            return (self._sample({}, result),)
        if kind != "vector":
            raise UpstreamRejected(
                UPSTREAM,
                Reason.of(
                    N_("%(upstream)s returned a %(kind)s, not an instant vector"),
                    upstream=UPSTREAM,
                    kind=kind,
                ),
                f"query returned resultType {kind!r}",
            )
        samples = []
        for raw in result:
            if not isinstance(raw, dict) or "value" not in raw:
                continue  # a native histogram sample (`histogram`) has no single value
            samples.append(self._sample(_labels(raw.get("metric")), raw["value"]))
        return tuple(samples)

    def query_range(
        self,
        promql: str,
        start: float,
        end: float,
        step: float,
        deadline: float | None = None,
        warnings: list[str] | None = None,
    ) -> tuple[Series, ...]:
        """A range query; `step` is widened when needed to stay within the point limit."""
        step = choose_step(start, end, step)
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        data = self._data("query_range", params, deadline, warnings)
        kind = require(data, "resultType", str, UPSTREAM)
        if kind != "matrix":
            raise UpstreamBadResponse(
                UPSTREAM,
                Reason.of(
                    N_("%(upstream)s returned a malformed '%(key)s'"), upstream=UPSTREAM, key="resultType"
                ),
                f"query_range returned resultType {kind!r}",
            )
        found = []
        for raw in require(data, "result", list, UPSTREAM):
            if not isinstance(raw, dict) or not isinstance(raw.get("values"), list):
                continue  # native histograms (`histograms`): not plotted
            points = tuple(self._point(pair) for pair in raw["values"])
            found.append(Series(_labels(raw.get("metric")), points))
        return tuple(found)

    def alerts(self, deadline: float | None = None) -> tuple[ActiveAlert, ...]:
        """The alerts pending or firing now (resolved ones are not here: see `query_range` on ALERTS)."""
        data = self._data("alerts", None, deadline)
        found = []
        for raw in require(data, "alerts", list, UPSTREAM):
            if not isinstance(raw, dict):
                continue
            labels = _labels(raw.get("labels"))
            if "alertname" not in labels:
                continue
            value: float | None
            try:
                value = parse_value(raw.get("value"))
            except ValueError:
                value = None
            found.append(
                ActiveAlert(
                    labels=labels,
                    annotations=_labels(raw.get("annotations")),
                    state=str(raw.get("state") or ""),
                    active_at=parse_rfc3339(raw.get("activeAt")),
                    value=value,
                )
            )
        return tuple(found)

    def rules(self, deadline: float | None = None) -> tuple[RuleGroup, ...]:
        """The alerting rules, by group, with each group's evaluation interval."""
        data = self._data("rules", {"type": "alert"}, deadline)
        groups = []
        for raw in require(data, "groups", list, UPSTREAM):
            if not isinstance(raw, dict):
                continue
            name = str(raw.get("name") or "")
            rules = tuple(
                AlertRule(
                    group=name,
                    name=str(rule.get("name") or ""),
                    query=str(rule.get("query") or ""),
                    duration=_number(rule.get("duration")),
                    labels=_labels(rule.get("labels")),
                    annotations=_labels(rule.get("annotations")),
                    health=str(rule.get("health") or "unknown"),
                )
                for rule in raw.get("rules") or []
                if isinstance(rule, dict) and rule.get("type", "alerting") == "alerting"
            )
            groups.append(RuleGroup(name, _number(raw.get("interval"), 60.0), rules))
        return tuple(groups)

    # --- parsing --------------------------------------------------------------------------------

    def _sample(self, labels: dict[str, str], pair: Any) -> Sample:
        at, value = self._point(pair)
        return Sample(labels, value, at)

    @staticmethod
    def _point(pair: Any) -> tuple[float, float]:
        """`[<unix time>, "<value>"]` -> (time, value)."""
        if not isinstance(pair, list) or len(pair) != 2:
            raise UpstreamBadResponse(
                UPSTREAM,
                Reason.of(N_("%(upstream)s returned a malformed '%(key)s'"), upstream=UPSTREAM, key="value"),
                f"a sample is not a [time, value] pair: {str(pair)[:80]}",
            )
        try:
            return float(pair[0]), parse_value(pair[1])
        except (TypeError, ValueError) as exc:
            raise UpstreamBadResponse(
                UPSTREAM,
                Reason.of(N_("%(upstream)s returned a malformed '%(key)s'"), upstream=UPSTREAM, key="value"),
                f"a sample value is not a number: {str(pair)[:80]}",
            ) from exc
