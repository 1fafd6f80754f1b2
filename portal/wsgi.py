"""The WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py portal.wsgi:app`.

A bad configuration stops the start with a message naming the key, without a traceback. The
app is then warmed up (templates compiled, languages loaded) once, in gunicorn's master: every
worker forked from it answers its first requests as quickly as its later ones.
"""

from __future__ import annotations

import logging
import sys

from . import ConfigError, create_app
from .web.warm_up import warm_up

try:
    app = create_app()
except ConfigError as error:
    print(f"portal: refusing to start: {error}", file=sys.stderr)
    raise SystemExit(2) from None

warmed = warm_up(app)
logging.getLogger("portal").info(
    "warmed up",
    extra={
        "event": "warmed_up",
        "templates": warmed.templates,
        "languages": warmed.languages,
        "duration_ms": round(warmed.seconds * 1000),
    },
)
