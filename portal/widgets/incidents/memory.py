"""What the portal saw Alertmanager hold over the last day: the past of alerts nothing else keeps.

Alertmanager drops an alert once it resolves, and keeps no history. For the alerts this
Prometheus made, the card reads their past from Prometheus' `ALERTS` series; an alert that Loki's
ruler, another Prometheus or a script sent to Alertmanager has no such record, and its row went
the moment it resolved: the on-call person who looked away for ten minutes never knew it fired.
Each read of Alertmanager is remembered in the store every worker (and replica, with Redis)
shares: each alert with when the portal last saw it held. One that Alertmanager no longer holds
is "gone": resolved, at the latest, at the first read that missed it. What the portal saw is all it
knows: an alert that fired and resolved while nobody had a dashboard open was never seen.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ...caching.stores import Store
from .client import AlertmanagerState, HeldAlert, Seen

log = logging.getLogger(__name__)

KEY = "incidents:alertmanager-seen"
DAY = 86400.0
# In an alert storm Alertmanager may hold thousands: the latest seen are kept, the store's entry
# bounded (each read rewrites it).
MAX_REMEMBERED = 1000


def _identity(alert: HeldAlert) -> str:
    """Alertmanager's fingerprint (a hash of the labels), else the labels themselves."""
    return alert.fingerprint or repr(sorted(alert.labels.items()))


class HeldMemory:
    """The alerts seen held within `window` seconds, kept in the shared store under `KEY`."""

    def __init__(self, store: Store, window: float = DAY) -> None:
        self.store = store
        self.window = window

    def keep(self, state: AlertmanagerState, now: float) -> AlertmanagerState:
        """`state` with the alerts seen held in the window that it no longer holds (`gone`).

        The store failing costs only the memory: the read itself is answered as it came."""
        try:
            stored = self.store.get(KEY)
        except Exception:
            log.warning(
                "Alertmanager's alerts could not be recalled", extra={"event": "held_memory_unreadable"}
            )
            return state
        seen = {
            key: one
            for key, one in (stored.items() if isinstance(stored, dict) else ())
            if isinstance(key, str) and isinstance(one, Seen)
        }
        held = {_identity(alert) for alert in state.alerts}
        # A silence or an inhibition ended with the alert: not kept on the memory of it.
        seen.update(
            {_identity(a): Seen(replace(a, silenced_by=(), inhibited_by=()), now) for a in state.alerts}
        )
        recent = sorted(
            ((key, one) for key, one in seen.items() if one.last_seen >= now - self.window),
            key=lambda pair: (-pair[1].last_seen, pair[0]),
        )
        seen = dict(recent[:MAX_REMEMBERED])
        try:
            self.store.set(KEY, seen, self.window)
        except Exception:
            log.warning(
                "Alertmanager's alerts could not be remembered", extra={"event": "held_memory_unwritable"}
            )
        gone = tuple(one for key, one in seen.items() if key not in held)
        return replace(state, gone=tuple(sorted(gone, key=lambda one: (one.last_seen, _identity(one.alert)))))
