"""Probes: /healthz (the process answers) and /readyz (configuration loaded, cache usable)."""

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
    """Readiness: the configuration is loaded and a cache is usable.

    A dead Redis does not make the pod unready: the in-process fallback serves meanwhile,
    and taking every replica out of the Service would turn a degraded cache into an outage
    (the `portal_cache_fallback_active` metric says so). Upstreams are not conditions either:
    one dead tool must not take the portal down. The answer says nothing of the build or the
    cache: anyone may ask.
    """
    store = portal_state().store
    if isinstance(store, FallbackStore):
        store.ping()  # notices a Redis that went away or came back, for the metric and the logs
    return jsonify(status="ready")
