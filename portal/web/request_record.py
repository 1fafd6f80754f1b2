"""What every request leaves when it ends: its JSON log line and its Prometheus samples.

One pair of hooks does both, so what they share (the clock, the URL rule, the status) is
looked up once per request. The id of a request is kept from X-Request-ID when it is sane,
sent back in that header, and shown on error pages for support.
"""

from __future__ import annotations

import logging
import random
import re
import time

from flask import Flask, Response, g, request

from ..identity import current_user
from ..observability.logs import access_log
from ..observability.metrics import UNMATCHED, RequestMetrics
from ..observability.paths import logged_path

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"  # the header as the WSGI environ holds it
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
# Probes are polled every few seconds; logging or counting them would drown the useful lines.
_QUIET_ENDPOINTS = frozenset({"health.healthz", "health.readyz"})


def new_request_id() -> str:
    """32 hex digits. An id correlates lines, it guards nothing: no system randomness needed."""
    return f"{random.getrandbits(128):032x}"


def init_request_record(app: Flask, metrics: RequestMetrics) -> None:
    """Time every request (wall clock, and the CPU its thread used: which cards cost the pod
    its CPU), and when it ends write its log line and its metrics.

    Registered before the other after-request hooks, so it runs after them (Flask runs them
    in reverse) and records the response as it leaves.
    """

    @app.before_request
    def _start() -> None:
        incoming = request.environ.get(REQUEST_ID_ENVIRON)
        g.request_id = incoming if incoming and _SAFE_REQUEST_ID.fullmatch(incoming) else new_request_id()
        g.started = time.perf_counter()
        g.cpu_started = time.thread_time()

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id")
        if request_id:
            response.headers.add(REQUEST_ID_HEADER, request_id)
        if request.endpoint in _QUIET_ENDPOINTS:
            return response
        now, cpu_now = time.perf_counter(), time.thread_time()
        seconds = max(now - g.get("started", now), 0.0)
        cpu = max(cpu_now - g.get("cpu_started", cpu_now), 0.0)
        rule = request.url_rule
        status = response.status_code
        metrics.observe(request.method, rule.rule if rule else UNMATCHED, status, seconds, cpu)
        # A 5xx is a warning (a level filter on errors finds it); a routine poll is debug.
        if status >= 500:
            level = logging.WARNING
        else:
            level = logging.DEBUG if g.get("routine_request") else logging.INFO
        if not access_log.isEnabledFor(level):
            return response
        user = current_user()
        fields = {
            "event": "request",
            "request_id": request_id,
            "method": request.method,
            "route": rule.rule if rule else None,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "cpu_ms": round(cpu * 1000, 2),
            "user": user.subject if user else None,
            **g.get("log_fields", {}),
        }
        if rule is None:  # an unknown URL (a 404, a 405): its path tells a broken link or a scanner
            fields["path"] = logged_path(request.path)
        access_log.log(level, "request", extra=fields)
        return response
