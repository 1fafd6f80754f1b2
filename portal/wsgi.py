"""The WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py portal.wsgi:app`.

A bad configuration stops the start with a message naming the key, without a traceback.
"""

from __future__ import annotations

import sys

from . import ConfigError, create_app

try:
    app = create_app()
except ConfigError as error:
    print(f"portal: refusing to start: {error}", file=sys.stderr)
    raise SystemExit(2) from None
