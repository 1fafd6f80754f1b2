"""The ceiling: a bare Flask app that returns a fixed fragment, under the same gunicorn settings.

`BENCH_FRAGMENT` names a file whose bytes `/fragment` returns as HTML: the same bytes the
portal's widget endpoint sent, so both put the same size on the wire. Nothing else happens
per request (no session, cache, template, log line, metric or header beyond Flask's own).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, Response

app = Flask(__name__)
_BODY = Path(os.environ["BENCH_FRAGMENT"]).read_bytes() if os.environ.get("BENCH_FRAGMENT") else b"ok"
_ENCODING = os.environ.get("BENCH_FRAGMENT_ENCODING", "")


@app.get("/fragment")
def fragment() -> Response:
    """The fixed fragment."""
    response = Response(_BODY, mimetype="text/html")
    if _ENCODING:
        response.headers["Content-Encoding"] = _ENCODING
    return response


@app.get("/readyz")
def readyz() -> str:
    """Ready as soon as it answers."""
    return "ready"
