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
    and taking every replica out of the Service would turn a degraded cache into an outage.
    Upstreams are not conditions either: one dead tool must not take the portal down.
    """
    state = portal_state()
    store = state.store
    cache = "local"
    if isinstance(store, FallbackStore):
        cache = "redis" if store.ping() else "local (redis unreachable)"
    return jsonify(status="ready", cache=cache, version=state.build.version)
