"""HTTP security headers: a strict Content-Security-Policy and friends, on every response."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, request

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


@bp.post("/csp-report")
def csp_report() -> tuple[str, int]:
    """Log a browser's Content-Security-Policy violation report."""
    report = request.get_json(force=True, silent=True) or {}
    body = report.get("csp-report", report) if isinstance(report, dict) else {}
    log.warning(
        "content security policy violation",
        extra={
            "event": "csp_violation",
            "directive": str(body.get("violated-directive", ""))[:200],
            "blocked": str(body.get("blocked-uri", ""))[:200],
        },
    )
    return "", 204


_BY_NAME = tuple((name.lower(), (name, value)) for name, value in HEADERS)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
_BODILESS = ("204", "304")
NOT_STORED = ("Cache-Control", "no-store")


class SecurityHeaders:
    """WSGI middleware: the headers join each response as it leaves the application.

    Added here, as constant tuples, they are neither validated nor copied again by Werkzeug
    (which costs about 20 µs per response in an after-request hook); a header the
    application set itself is kept.

    They govern what a browser does with a document: scripts, framing, referrers, sniffing.
    An htmx request's answer that no cache may keep (a widget poll) is read by htmx and never
    becomes a document: a page cannot make a browser navigate with the HX-Request header, and
    no-store means it cannot be served later to a navigation. Such answers go without them,
    which takes ~600 bytes and ~30 µs of worker CPU off every poll (bench/README.md).
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        secure = environ.get("wsgi.url_scheme") == "https"
        from_htmx = environ.get("HTTP_HX_REQUEST") == "true"

        def with_headers(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # A 204 or 304 has no body to protect either.
            if not status.startswith(_BODILESS) and not (from_htmx and NOT_STORED in headers):
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
