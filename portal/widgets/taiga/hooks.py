"""Taiga's webhooks (optional): a change in Taiga reaches every open dashboard within seconds.

Taiga POSTs each change of a project to the URL configured in its admin (`POST /hooks/taiga`
here), signed with HMAC-SHA1 of the raw body under the webhook's key, hex, in
`X-TAIGA-WEBHOOK-SIGNATURE` (taiga-back `taiga/webhooks/tasks.py`). The key is
PORTAL_TAIGA_WEBHOOK_SECRET. A good signature invalidates the shared board (and the statuses when
they changed) in every worker of every replica, and announces the change so that open pages poll
their Taiga cards at once (`caching/changes.py`); a bad or missing one is a 403 and changes nothing.

Taiga refuses to call private addresses (10/8, 172.16/12, 192.168/16, loopback) unless its
setting WEBHOOKS_ALLOW_PRIVATE_ADDRESS is True: a portal inside the cluster needs it set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

from flask import Blueprint, Response, request

from ...state import portal_state
from ..contract import upstream_key
from .cards import CATALOG_KEYS
from .upstream import TAIGA

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-TAIGA-WEBHOOK-SIGNATURE"
MAX_BODY = 1_000_000
# What a change of each type makes stale; other types (epics, wiki pages, "test") change nothing shown.
TOUCHES = {
    "task": ("board",),
    "userstory": ("board",),
    "issue": ("board",),
    "milestone": ("board",),
    "taskstatus": ("board", *CATALOG_KEYS),
    "userstorystatus": ("board", *CATALOG_KEYS),
    "issuestatus": ("board", *CATALOG_KEYS),
    "issuetype": CATALOG_KEYS,  # an issue's type, severity or priority renamed or recoloured
    "severity": CATALOG_KEYS,
    "priority": CATALOG_KEYS,
}


def signature(body: bytes, key: str) -> str:
    """Taiga's signature of a body: HMAC-SHA1 under the webhook's key, in hex."""
    return hmac.new(key.encode("utf-8"), msg=body, digestmod=hashlib.sha1).hexdigest()


def receive() -> Response:
    """A change in Taiga, signed with the shared key: drop what it made stale, everywhere."""
    state = portal_state()
    key = state.settings.secrets.of(TAIGA.name).get("webhook_secret", "")
    body = request.get_data(cache=False)
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not key or len(body) > MAX_BODY or not given or not hmac.compare_digest(given, signature(body, key)):
        log.warning(
            "Taiga webhook refused",
            extra={"event": "taiga_webhook_refused", "reason": "no key" if not key else "bad signature"},
        )
        return Response("Forbidden\n", status=403, content_type="text/plain")
    try:
        payload = json.loads(body)
    except ValueError:
        return Response("Not JSON\n", status=400, content_type="text/plain")
    kind = str(payload.get("type", "")) if isinstance(payload, dict) else ""
    touched = TOUCHES.get(kind, ())
    for part in touched:
        state.cache.invalidate(upstream_key(TAIGA, part))
    if touched:
        state.changes.announce(TAIGA.name)  # open pages poll the Taiga cards at once
    log.info(
        "Taiga webhook received",
        extra={"event": "taiga_webhook", "type": kind, "invalidated": ",".join(touched)},
    )
    return Response(status=204)


def register(blueprint: Blueprint) -> None:
    from ...auth.guard import public_view  # noqa: PLC0415 - auth imports the widgets' registry

    def taiga_webhook() -> Response:
        """Taiga's webhook: a signed change invalidates the shared Taiga data at once."""
        return receive()

    blueprint.add_url_rule("/hooks/taiga", "taiga_webhook", public_view(taiga_webhook), methods=["POST"])
