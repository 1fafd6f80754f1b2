"""HTTP security headers: a strict Content-Security-Policy and friends, on every response."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from flask import Blueprint, Flask, current_app, request

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "report-uri /csp-report",
    ]
)

HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)

bp = Blueprint("security", __name__)

REPORTS_LOGGED = 20  # CSP reports logged per worker per minute; the rest are counted, not written


class _LogBudget:
    """At most `limit` lines per `window` seconds: anyone may post a report, and a flood of them
    must not flood the logs (Loki) too. The first line after a window says how many were left out."""

    def __init__(self, limit: int = REPORTS_LOGGED, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._started = -window
        self._logged = self._dropped = 0
        self._lock = threading.Lock()

    def take(self) -> int | None:
        """None when this line is over budget; else how many were left out before it."""
        now = time.monotonic()
        with self._lock:
            if now - self._started >= self.window:
                self._started, self._logged = now, 0
            if self._logged >= self.limit:
                self._dropped += 1
                return None
            self._logged += 1
            dropped, self._dropped = self._dropped, 0
            return dropped


@bp.post("/csp-report")
def csp_report() -> tuple[str, int]:
    """Log a browser's Content-Security-Policy violation report.

    Anyone may post here: the body is read by orjson, which refuses deep nesting as it refuses any
    other malformed JSON (the standard library's parser raises RecursionError, a 500)."""
    try:
        report = orjson.loads(request.get_data(cache=False))
    except ValueError:  # JSONDecodeError: malformed, too deep, not UTF-8
        report = None
    body = report.get("csp-report", report) if isinstance(report, dict) else {}
    if not isinstance(body, dict):  # whatever a client sends, a report is a mapping or nothing
        body = {}
    left_out = current_app.extensions.setdefault("portal_csp_reports", _LogBudget()).take()
    if left_out is not None:
        log.warning(
            "content security policy violation",
            extra={
                "event": "csp_violation",
                "directive": str(body.get("violated-directive", ""))[:200],
                "blocked": str(body.get("blocked-uri", ""))[:200],
                "reports_left_out": left_out,
            },
        )
    return "", 204


_BY_NAME = tuple((name.lower(), (name, value)) for name, value in HEADERS)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
_BODILESS = ("204", "304")


class SecurityHeaders:
    """WSGI middleware: the headers join every response that has a body, as it leaves.

    Added here, as constant tuples, they are neither validated nor copied again by Werkzeug; a
    header the application set itself is kept. A 204 or 304 has no body to protect.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        secure = environ.get("wsgi.url_scheme") == "https"

        def with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not status.startswith(_BODILESS):
                present = {name.lower() for name, _ in headers}
                headers.extend(header for name, header in _BY_NAME if name not in present)
                if secure and "strict-transport-security" not in present:
                    headers.append(HSTS)
            return start_response(status, headers, exc_info)

        return self.app(environ, with_headers)


def init_security(app: Flask) -> None:
    """Register the report endpoint and add the headers to every response."""
    app.register_blueprint(bp)
    app.wsgi_app = SecurityHeaders(app.wsgi_app)  # type: ignore[method-assign]
