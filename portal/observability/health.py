"""Probes: /healthz (the process answers) and /readyz (configuration loaded, cache and database usable)."""

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
    """Readiness: the configuration is loaded, a cache is usable and the database answers.

    A dead Redis does not make the pod unready: the in-process fallback serves meanwhile,
    and taking every replica out of the Service would turn a degraded cache into an outage.
    Upstreams are not conditions either: one dead tool must not take the portal down. The
    portal's own database is (503 while it cannot be reached, or is not migrated yet): a replica
    without it would show defaults instead of people's layouts and refuse their changes.
    The answer says ready or not, nothing of the build, cache or database: anyone may ask.
    """
    state = portal_state()
    store = state.store
    if isinstance(store, FallbackStore):
        store.ping()  # notices a Redis that went away or came back, for the metric and the logs
    database = state.database
    if not (database.ready() and database.ping()):
        response = jsonify(status="unready")
        response.status_code = 503
        return response
    return jsonify(status="ready")
