"""Error pages (403, 404, 500, ...) in the portal's look and the user's language."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, render_template
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorText:
    """What an error page says: a title, an explanation and an icon of static/icons/ui.svg."""

    title: Any  # lazy translatable strings
    text: Any
    icon: str


PAGES = {
    403: ErrorText(
        _l("Access denied"),
        _l("You do not have access to this page. An administrator can give you the role it needs."),
        "lock",
    ),
    404: ErrorText(_l("Page not found"), _l("This page does not exist, or it has moved."), "search"),
    500: ErrorText(
        _l("Something went wrong"),
        _l("The portal hit an unexpected error. It has been logged; try again in a moment."),
        "alert",
    ),
}
OTHER = ErrorText(_l("Request not handled"), _l("The portal could not handle this request."), "alert")


def error_page(code: int, headers: list[tuple[str, str]] | None = None) -> Response:
    """The full error page for an HTTP status, or plain text if the page itself fails."""
    page = PAGES.get(code, OTHER)
    try:
        body = render_template("errors/error.html", code=code, page=page, request_id=g.get("request_id"))
        response = Response(body, status=code, mimetype="text/html")
    except Exception:  # the page must not hide the original error behind a second one
        log.exception("error page failed to render", extra={"event": "error_page_failed"})
        response = Response(f"{code} {page.title}\n", status=code, mimetype="text/plain")
    for name, value in headers or []:
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def init_errors(app: Flask) -> None:
    """Answer every HTTP error, and any unhandled exception (500), with the portal's page."""

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response | HTTPException:
        if error.code is None or error.code < 400:
            return error
        headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
        return error_page(error.code, headers)
