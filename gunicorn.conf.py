"""Gunicorn settings for every production-like start: the image, `make run` and `make bench`.

Override with environment variables: PORTAL_BIND, PORTAL_WORKERS, PORTAL_THREADS,
PORTAL_METRICS_BIND, PROMETHEUS_MULTIPROC_DIR, PORTAL_ACCESS_LOG.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import signal
import tempfile
from typing import Any

from gunicorn.glogging import Logger

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

# --- metrics -------------------------------------------------------------------------------
# Every process writes its samples to files in one directory (prometheus_client's multiprocess
# mode, chosen when prometheus_client is imported: so before the app is loaded, here), and the
# master serves their sum on its own port. "" or "off" turns that server off.
metrics_bind = os.environ.get("PORTAL_METRICS_BIND", "0.0.0.0:9100")


def _metrics_dir() -> str:
    """The samples directory, emptied once per master (a private temporary one when unset).

    In Kubernetes it is an emptyDir, which outlives a container restart: samples of the
    previous run would be added to the new ones. A reload (SIGHUP) runs this file again in
    the same master and must not empty it: the preloaded app's samples would be lost.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not path:
        path = tempfile.mkdtemp(prefix="portal-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
        # Removed when the master exits, also when the app fails to load (no on_exit then);
        # workers exit through the same interpreter exit, hence the pid check.
        master = os.getpid()
        atexit.register(lambda: os.getpid() == master and shutil.rmtree(path, ignore_errors=True))
    if os.environ.get("PORTAL_METRICS_DIR_OWNER") != str(os.getpid()):
        os.makedirs(path, exist_ok=True)
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))
        os.environ["PORTAL_METRICS_DIR_OWNER"] = str(os.getpid())
    return path


metrics_dir = _metrics_dir()

# Only now: importing the package `portal` imports prometheus_client, which must find the
# directory set (imported first, every worker counted in its own memory and /metrics was empty).
from portal.observability.paths import logged_path  # noqa: E402


def when_ready(server: Any) -> None:
    """Serve the workers' summed metrics from the master, on a port the Ingress does not expose."""
    from prometheus_client import multiprocess  # noqa: PLC0415
    from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics  # noqa: PLC0415

    # The live gauges the app set while the master loaded it (every circuit closed) are no
    # worker's: kept, the master's 0 was the live minimum and the circuit never read open.
    multiprocess.mark_process_dead(os.getpid())
    if metrics_bind in ("", "off"):
        return

    host, _, port = metrics_bind.rpartition(":")
    try:
        GunicornPrometheusMetrics.start_http_server_when_ready(int(port), host.strip("[]") or "0.0.0.0")
    except (OSError, ValueError) as exc:
        # Users come first: keep serving; Prometheus sees the target down and alerts.
        server.log.error("Metrics server not started on %s: %s", metrics_bind, exc)
        return
    server.log.info("Metrics on http://%s/metrics", metrics_bind)


def child_exit(server: Any, worker: Any) -> None:
    """A dead worker's gauges leave the "live" sums (its counters stay: totals never go back)."""
    from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics  # noqa: PLC0415

    GunicornPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)


# --- garbage collector ---------------------------------------------------------------------
# A worker holds a few hundred thousand long-lived objects (its cards' views and cuts, Taiga's
# board, sessions). Python's cyclic collector went through all of them at each full collection:
# 130 to 670 ms with every thread of the worker stopped, every few seconds at 1,000 people, and
# every card's p99 was those pauses. The app's own objects, loaded once in the master, are
# frozen before each fork (never scanned again, and their pages stay shared with the master);
# in the workers, young-object collections run every 20,000 allocations instead of 700, so that
# full ones come a few times a minute at most. Measured in bench/README.md.
GC_THRESHOLDS = (20_000, 50, 20)


def pre_fork(server: Any, worker: Any) -> None:
    """Freeze what the master loaded (the app, its templates and translations) for the worker."""
    gc.freeze()


def post_fork(server: Any, worker: Any) -> None:
    """Collect garbage less often in the worker (its short-lived objects are freed by refcount)."""
    gc.set_threshold(*GC_THRESHOLDS)
    server.log.info(
        "Worker %s: %d objects frozen, collector thresholds %s",
        worker.pid,
        gc.get_freeze_count(),
        GC_THRESHOLDS,
    )


# --- a stop while a worker boots ----------------------------------------------------------
# From its fork until gunicorn installs its own handlers, a worker still runs the master's: a
# TERM sent then (a pod stopped as it starts, Ctrl-C just after `make run`) is queued for a
# master loop the worker never runs, and the worker lives on until the graceful timeout kills
# it 20 s later. The stop signals are blocked across the fork; the child remembers any that
# arrive and sends them to itself again once its own handlers are in place.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
_stops_while_booting: list[int] = []


def _remember_stop(signum: int, _frame: Any) -> None:
    _stops_while_booting.append(signum)


def _block_stops() -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _unblock_stops() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _child_remembers_stops() -> None:
    _stops_while_booting.clear()
    for signum in STOP_SIGNALS:
        signal.signal(signum, _remember_stop)
    _unblock_stops()


os.register_at_fork(
    before=_block_stops, after_in_parent=_unblock_stops, after_in_child=_child_remembers_stops
)


def post_worker_init(worker: Any) -> None:
    """Say how many threads the worker serves with (the in-flight requests' ceiling), and give it
    the stops it received while booting, now that its own handlers take them."""
    requests = getattr(worker.wsgi, "extensions", {}).get("portal_request_metrics")
    if requests is not None:
        requests.serving_threads(worker.cfg.threads)
    for signum in _stops_while_booting:
        name = signal.Signals(signum).name
        worker.log.info("Worker %s: %s received while booting, taken now", worker.pid, name)
        os.kill(os.getpid(), signum)


# --- logs ----------------------------------------------------------------------------------
# The application logs one JSON line per request (with user, widget and cache result), so
# gunicorn's access log is off unless PORTAL_ACCESS_LOG=1; both use the same JSON format.
accesslog = "-" if os.environ.get("PORTAL_ACCESS_LOG", "") in ("1", "true") else None


class PortalLogger(Logger):
    """Gunicorn's logger, whose access log really is off without PORTAL_ACCESS_LOG.

    With a `logconfig_dict` gunicorn writes an access line for every request even when
    `accesslog` is unset: a second line per request, and its cost, on the hot path.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.cfg.accesslog:
            super().access(resp, req, environ, request_time)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """The access line's fields, a calendar feed's path without its token (the token is the
        feed's only key: anyone who reads the log could subscribe to that person's deadlines)."""
        found: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        found["U"] = logged_path(found.get("U", ""))
        return found


logger_class = PortalLogger
# The path without its query string (which may carry a token), and the request id.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms request_id=%({x-request-id}o)s'
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "portal.observability.logs.json_formatter"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    },
    # The application adds its own JSON handler to the root logger (portal.observability.logs).
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}
