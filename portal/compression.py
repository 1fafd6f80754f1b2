"""Response compression (zstd, Brotli, gzip): the stylesheets and scripts are most of a first load."""

from __future__ import annotations

from collections.abc import Hashable

from flask import Flask, Response, current_app, g, request
from flask_compress import Compress

from .memo import Memo

compress = Compress()
MEMO_KEY = "fragment_memo_key"  # set in `g` by the widget framework for a memoized fragment
MIMETYPES = ["text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml"]


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
        memo_key = g.get(MEMO_KEY)
        if memo_key is not None and response.status_code == 200:
            return _compressed_fragment(response, (memo_key, request.headers.get("Accept-Encoding", "")))
        if (
            request.endpoint == "static"
            and response.is_streamed
            and response.status_code == 200
            and response.mimetype in app.config["COMPRESS_MIMETYPES"]
        ):
            response.direct_passthrough = False
            response.make_sequence()
        return compress.after_request(response)


def _compressed_fragment(response: Response, key: tuple[Hashable, str]) -> Response:
    """The fragment compressed as flask-compress would, once per version and Accept-Encoding."""
    compressed: Memo[tuple[Hashable, str], tuple[bytes, str]] = current_app.extensions.setdefault(
        "portal_compressed_fragments", Memo(512)
    )
    found = compressed.get(key)
    if found is None:
        response = compress.after_request(response)
        compressed.put(key, (response.get_data(), response.headers.get("Content-Encoding", "")))
        return response
    body, encoding = found
    response.set_data(body)
    headers = response.headers
    if encoding:
        headers["Content-Encoding"] = encoding
    vary = headers.get("Vary")  # the fragment's own Vary is known: no header parsing per poll
    headers["Vary"] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"
    return response
