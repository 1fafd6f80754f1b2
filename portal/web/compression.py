"""Response compression (zstd, Brotli, gzip): the stylesheets and scripts are most of a first load."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from flask import Flask, Response, current_app, request
from flask_compress import Compress

from ..caching.memo import Memo

compress = Compress()
R = TypeVar("R", bound=Response)
ENCODED = "portal_encoded"  # a response attribute: True when its body came from encoded_fragment()
MIMETYPES = ["text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml"]
ENCODED_BYTES = 4 * 2**20  # encoded card bodies kept per worker (most are a few kB compressed)


def init_compression(app: Flask) -> None:
    """Compress pages, fragments and text assets; empty and small answers go out as they are."""
    app.config.setdefault("COMPRESS_MIMETYPES", MIMETYPES)
    app.config["COMPRESS_REGISTER"] = False  # called below, after two corrections
    compress.init_app(app)

    @app.after_request
    def _compress(response: Response) -> Response:
        # A 204 ("this card has not changed") has no body to encode, and must say so.
        if response.status_code in (204, 304):
            return response
        # A static file is streamed from an open file; compressing the stream would drop the
        # file's close(). Buffered instead (Werkzeug closes the file), then compressed whole.
        # Static URLs are cached for a year, so each browser asks for each file once.
        if getattr(response, ENCODED, False):
            return response
        if (
            request.endpoint == "static"
            and response.is_streamed
            and response.status_code == 200
            and response.mimetype in app.config["COMPRESS_MIMETYPES"]
        ):
            response.direct_passthrough = False
            response.make_sequence()
        return compress.after_request(response)


def mark_encoded(response: R) -> R:
    """Say that `response`'s body came from encoded_fragment(): it is not compressed again."""
    setattr(response, ENCODED, True)
    return response


def encoded_fragment(key: Hashable, render: Callable[[], bytes]) -> tuple[bytes, str]:
    """A fragment's body as this request accepts it, and its Content-Encoding ("" for none).

    Encoded as flask-compress would, once per `key` (what the fragment shows) and
    Accept-Encoding; the response must then say `Vary: Accept-Encoding` and go through
    mark_encoded().
    """
    encoded: Memo[tuple[Hashable, str], tuple[bytes, str]] = current_app.extensions.setdefault(
        "portal_compressed_fragments", Memo(512, ENCODED_BYTES, lambda found: len(found[0]))
    )
    memo_key = (key, request.environ.get("HTTP_ACCEPT_ENCODING", ""))
    found = encoded.get(memo_key)
    if found is None:
        response = compress.after_request(Response(render(), mimetype="text/html"))
        found = (response.get_data(), response.headers.get("Content-Encoding", ""))
        encoded.put(memo_key, found)
    return found
