"""HTTP security headers: a strict Content-Security-Policy and friends, on every response."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, request

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


def init_security(app: Flask) -> None:
    """Register the report endpoint and add the headers to every response."""
    app.register_blueprint(bp)

    @app.after_request
    def _headers(response: Response) -> Response:
        # These protect a document or a body; an answer without one (an unchanged widget poll)
        # would carry ~600 bytes of them for nothing, on every poll of every open dashboard.
        if response.status_code in (204, 304):
            return response
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}  # one pass; a view may set its own
        for name, value in HEADERS:
            if name.lower() not in present:
                headers.add(name, value)
        if request.is_secure and "strict-transport-security" not in present:
            headers.add("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response
