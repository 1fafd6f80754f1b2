"""Probes: /healthz (the process answers) and /readyz (configuration loaded, database migrated once)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from ..caching.stores import FallbackStore
from ..state import portal_state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Liveness: the process answers."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Readiness: the configuration is loaded, a cache is usable and the database has been
    reached and migrated once.

    A dead Redis does not make the pod unready: the in-process fallback serves meanwhile,
    and taking every replica out of the Service would turn a degraded cache into an outage.
    Upstreams are not conditions either: one dead tool must not take the portal down. Nor is
    the database once this process has migrated it: when it goes away later (a failover, a
    maintenance) every replica loses it at once, and the Service would be left with none; the
    cards keep working and the page shows the team's default layout, saying so. Before that
    first success (a wrong address or password, a schema newer than this release) the pod is
    unready: it has never been able to serve people's layouts.
    The answer says ready or not, nothing of the build, cache or database: anyone may ask.
    """
    state = portal_state()
    store = state.store
    if isinstance(store, FallbackStore):
        store.ping()  # notices a Redis that went away or came back, for the metric and the logs
    database = state.database
    state.cache.observer.database_reachable(database.ping())  # portal_database_up, for the alert
    if not database.ready():
        response = jsonify(status="unready")
        response.status_code = 503
        return response
    return jsonify(status="ready")
