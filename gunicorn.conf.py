"""Gunicorn settings for every production-like start: the image, `make run` and `make bench`.

Override with environment variables: PORTAL_BIND, PORTAL_WORKERS, PORTAL_THREADS.
"""

from __future__ import annotations

import os

bind = os.environ.get("PORTAL_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("PORTAL_WORKERS", "2"))
# Threads let a worker keep answering cached widgets while one request waits on an upstream.
worker_class = "gthread"
threads = int(os.environ.get("PORTAL_THREADS", "8"))
# Load the app once in the master: a bad configuration stops the start before any fork.
preload_app = True
timeout = 30
graceful_timeout = 20
keepalive = 5
# Heartbeat files on tmpfs when available (works with a read-only root filesystem).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
forwarded_allow_ips = os.environ.get("PORTAL_FORWARDED_ALLOW_IPS", "127.0.0.1")

# The application logs one JSON line per request; gunicorn's own messages use the same format.
accesslog = None
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "portal.logs.json_formatter"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    },
    # The application adds its own JSON handler to the root logger (portal.logs).
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}
