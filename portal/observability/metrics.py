"""Prometheus metrics: HTTP requests, cache, upstreams, build info.

Under gunicorn the metrics are in prometheus_client's multiprocess mode: every process writes
its samples to files in PROMETHEUS_MULTIPROC_DIR, and the master serves their sum on a port
of its own (see gunicorn.conf.py), which the Ingress does not route to. The application
itself never serves /metrics.

Label values are bounded: URL rules (not raw paths), widget slugs, upstream names, outcomes.
Nothing per user.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, get_args

from flask import Flask, got_request_exception, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_flask_exporter import PrometheusMetrics

from ..caching.widget_cache import CacheObserver, Source
from ..upstreams.breaker import CircuitState
from ..upstreams.http import Quota
from .build import BuildInfo

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# A widget answered from cache takes a few milliseconds; an upstream fetch up to its timeout.
# 1.5: the chart's latency alert (latencyP99Seconds) falls on a bucket's edge, so no p99 is
# estimated over it by interpolation when every request took less.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0)
UPSTREAM_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Any other method (a client may send anything) shares one label value.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
CIRCUIT_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
UNMATCHED = "<unmatched>"


class PrometheusObserver(CacheObserver):
    """Cache and upstream events as metrics; every label set of the hot path is bound up front."""

    def __init__(self, registry: CollectorRegistry, widgets: Iterable[str], upstreams: Iterable[str]) -> None:
        widgets = tuple(widgets)
        self._results = Counter(
            "portal_widget_cache_results_total",
            "Widget cache lookups by result: hit (fresh), miss (fetched now), coalesced (another "
            "caller's fetch), stale (last good data after a failure), error (nothing to show), "
            "pending (nothing yet while another request fetches)",
            ("widget", "result"),
            registry=registry,
        )
        self._calls = Histogram(
            "portal_upstream_request_duration_seconds",
            "Upstream API calls by upstream and outcome (ok, timeout, unreachable, server_error, "
            "throttled, auth, bad_response, rejected, conflict, error)",
            ("upstream", "outcome"),
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        # Each worker has its own breakers; "livemin" shows the best state among live workers.
        self._circuit = Gauge(
            "portal_upstream_circuit_state",
            "Circuit breaker of each upstream: 0 closed, 1 half-open, 2 open (the best among the workers)",
            ("upstream",),
            # The best: a worker's value moves only when a call of its own reaches its breaker, and
            # a worker that found the upstream back while the other made no call since would
            # otherwise keep it "open" all night (PortalUpstreamCircuitOpen firing for nothing).
            multiprocess_mode="livemin",
            registry=registry,
        )
        # Only when the upstream reports it (GitLab's RateLimit-* headers); the latest answer wins.
        self._quota_limit = Gauge(
            "portal_upstream_ratelimit_limit",
            "Requests the upstream allows per its rate-limit window, as its latest answer said",
            ("upstream",),
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self._quota_remaining = Gauge(
            "portal_upstream_ratelimit_remaining",
            "Requests left in the upstream's rate-limit window, as its latest answer said",
            ("upstream",),
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        self._fallback = Gauge(
            "portal_cache_fallback_active",
            "1 while a worker uses its in-process cache because the shared cache (Redis) is unreachable",
            multiprocess_mode="livemax",
            registry=registry,
        )
        # Set at each readiness probe: a database lost after the start leaves the pods ready (the
        # page falls back on the default layout), so this is how it is seen.
        self._database = Gauge(
            "portal_database_up",
            "1 when the portal's own database (layouts, preferences) answered the latest readiness probe,"
            " 0 when not",
            multiprocess_mode="livemostrecent",
            registry=registry,
        )
        # A bug in a card: the page is drawn all the same (a 200), so the requests' statuses miss it.
        self._card_failures = Counter(
            "portal_widget_failures_total",
            "Cards that could not be drawn (a bug in the widget's code or template), by widget",
            ("widget",),
            registry=registry,
        )
        for widget in widgets:
            self._card_failures.labels(widget)
        self._bound = {
            (widget, source): self._results.labels(widget, source)
            for widget in widgets
            for source in get_args(Source)
        }
        for upstream in upstreams:
            self._circuit.labels(upstream).set(CIRCUIT_VALUES[CircuitState.CLOSED])
        self._fallback.set(0)

    def result(self, widget: str, source: Source) -> None:
        counter = self._bound.get((widget, source))
        if counter is None:
            counter = self._bound[widget, source] = self._results.labels(widget, source)
        counter.inc()

    def upstream_call(self, upstream: str, outcome: str, seconds: float) -> None:
        self._calls.labels(upstream, outcome).observe(seconds)

    def breaker_state(self, upstream: str, state: CircuitState) -> None:
        self._circuit.labels(upstream).set(CIRCUIT_VALUES[state])

    def upstream_quota(self, upstream: str, quota: Quota) -> None:
        if quota.limit is not None:
            self._quota_limit.labels(upstream).set(quota.limit)
        if quota.remaining is not None:
            self._quota_remaining.labels(upstream).set(quota.remaining)

    def database_reachable(self, reachable: bool) -> None:
        self._database.set(1 if reachable else 0)

    def card_failed(self, widget: str) -> None:
        self._card_failures.labels(widget).inc()

    def backend_fallback(self, active: bool) -> None:
        self._fallback.set(1 if active else 0)


class RequestMetrics:
    """Request count and latency per method, URL rule and status.

    The names and labels are prometheus-flask-exporter's defaults, recorded by the portal's
    one end-of-request hook (portal/request_record.py): the exporter's own hooks cost about
    35 µs per request, most of it looking labels up by name. Here each label set's samples
    are bound once per worker, and a poll at cache hit only adds to them.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._duration = Histogram(
            "portal_http_request_duration_seconds",
            "Flask HTTP request duration in seconds",
            ("method", "path", "status"),
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self._total = Counter(
            "portal_http_request_total",
            "Total number of HTTP requests",
            ("method", "status"),
            registry=registry,
        )
        self._exceptions = Counter(
            "portal_http_request_exceptions_total",
            "Total number of HTTP requests which resulted in an exception",
            ("method", "status"),
            registry=registry,
        )
        # Which routes use the workers' CPU (a card that costs more than the others shows here
        # before the pod runs out): the thread's CPU time from the request's start to its end.
        self._cpu = Counter(
            "portal_http_request_cpu_seconds",
            "CPU seconds used by HTTP requests in the portal's hooks and views (the request's thread)",
            ("method", "path"),
            registry=registry,
        )
        # How busy the pod is: the requests its workers handle now against the threads they
        # have (gunicorn's workers x threads). Near 1, a poll waits for a thread.
        self.in_flight = Gauge(
            "portal_http_requests_in_flight",
            "Requests the workers are handling now (probes included), summed over the pod's live workers",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self._threads = Gauge(
            "portal_worker_threads",
            "Threads that serve requests (gunicorn's threads per worker), summed over the pod's live"
            " workers: the ceiling of portal_http_requests_in_flight",
            multiprocess_mode="livesum",
            registry=registry,
        )
        # Bounded: METHODS (+ other) x URL rules (+ unmatched) x the statuses the portal sends.
        self._bound: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def serving_threads(self, threads: int) -> None:
        """This worker serves with `threads` threads (set once it is forked: gunicorn.conf.py)."""
        self._threads.set(threads)

    def observe(self, method: str, rule: str, status: int, seconds: float, cpu: float = 0.0) -> None:
        """One request done: `rule` is its URL rule, or UNMATCHED; `cpu` the seconds of CPU it used."""
        if method not in METHODS:  # before the lookup: the bound label sets stay few
            method = OTHER_METHOD
        bound = self._bound.get((method, rule, status))
        if bound is None:
            code = str(status)
            bound = (
                self._duration.labels(method, rule, code),
                self._total.labels(method, code),
                self._cpu.labels(method, rule),
            )
            self._bound[method, rule, status] = bound
        duration, total, used = bound
        duration.observe(seconds)
        total.inc()
        used.inc(cpu)

    def exception(self, method: str) -> None:
        """A view or hook raised: the request ends as a 500."""
        self._exceptions.labels(method if method in METHODS else OTHER_METHOD, "500").inc()


class InFlight:
    """WSGI middleware, the outermost: counts each request from its arrival until the server
    closes its answer (a streamed body included). A file the server sends by itself (its
    wsgi.file_wrapper, sendfile) is counted until it is handed over: wrapped, it could not be."""

    def __init__(self, app: WSGIApplication, gauge: Gauge) -> None:
        self.app = app
        self.gauge = gauge

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.gauge.inc()
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self.gauge.dec()
            raise
        wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(body, wrapper):
            self.gauge.dec()
            return body
        return _CountedBody(body, self.gauge)


class _CountedBody:
    """An answer's body that takes its request off the in-flight count when the server closes it."""

    __slots__ = ("_body", "_gauge", "_open")

    def __init__(self, body: Iterable[bytes], gauge: Gauge) -> None:
        self._body = body
        self._gauge = gauge
        self._open = True

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._open:
                self._open = False
                self._gauge.dec()


def count_in_flight(app: Flask, requests: RequestMetrics) -> None:
    """Wrap the app (after every other middleware) in the in-flight count."""
    app.wsgi_app = InFlight(app.wsgi_app, requests.in_flight)  # type: ignore[method-assign]


def init_metrics(app: Flask, registry: CollectorRegistry, build: BuildInfo) -> RequestMetrics:
    """The request metrics and the build info, for this app."""
    # The exporter serves nothing here (gunicorn's master does, see gunicorn.conf.py) and its
    # per-request hooks are replaced by RequestMetrics.
    metrics = PrometheusMetrics(app, path=None, registry=registry, export_defaults=False)
    metrics.info(
        "portal_build_info",
        "The running portal's version and commit (always 1)",
        version=build.version,
        commit=build.commit,
    )
    requests = RequestMetrics(registry)

    def _raised(sender: Flask, exception: BaseException, **extra: Any) -> None:
        requests.exception(request.method)

    got_request_exception.connect(_raised, app, weak=False)
    app.extensions["portal_metrics"] = metrics
    app.extensions["portal_request_metrics"] = requests
    return requests
