"""Response compression (zstd, Brotli, gzip): the stylesheets and scripts are most of a first load."""

from __future__ import annotations

from flask import Flask
from flask_compress import Compress

compress = Compress()


def init_compression(app: Flask) -> None:
    """Compress pages, fragments and text assets; 204s and small answers go out as they are."""
    app.config.setdefault(
        "COMPRESS_MIMETYPES",
        ["text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml"],
    )
    compress.init_app(app)
