"""JSON logs on stdout, one line per request, with a request id that follows the request."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

from .identity import current_user

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
# Probes are polled every few seconds; logging them would drown the useful lines.
_QUIET_ENDPOINTS = frozenset({"health.healthz", "health.readyz"})

access_log = logging.getLogger("portal.access")


def json_formatter() -> logging.Formatter:
    """The one log format of the portal and of gunicorn (Loki parses it)."""
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure_logging(level: str = "INFO") -> None:
    """Send every logger to stdout as JSON (idempotent; other handlers are left alone)."""
    root = logging.getLogger()
    root.setLevel(level)
    # The JSON lines show none of these; not collecting them saves a stack walk per line
    # (the "Optimization" section of the logging HOWTO).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if any(getattr(h, "_portal", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(json_formatter())
    handler._portal = True  # type: ignore[attr-defined]
    root.addHandler(handler)


def log_field(name: str, value: Any) -> None:
    """Add a field to this request's log line (widget, cache result, ...)."""
    fields: dict[str, Any] = g.setdefault("log_fields", {})
    fields[name] = value


def init_request_logging(app: Flask) -> None:
    """Give each request an id (kept from X-Request-ID when sane) and log it when done."""

    @app.before_request
    def _start() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        here = g._get_current_object()  # one proxy lookup, not one per use
        here.request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        here.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        here = g._get_current_object()
        asked = request._get_current_object()  # type: ignore[attr-defined]
        request_id = here.get("request_id")
        if request_id:
            response.headers[REQUEST_ID_HEADER] = request_id
        if asked.endpoint in _QUIET_ENDPOINTS:
            return response
        user = current_user()
        rule = asked.url_rule
        fields = {
            "event": "request",
            "request_id": request_id,
            "method": asked.method,
            "route": rule.rule if rule else None,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - here.get("started", time.perf_counter())) * 1000, 2),
            "user": user.subject if user else None,
            **here.get("log_fields", {}),
        }
        access_log.info("request", extra=fields)
        return response
