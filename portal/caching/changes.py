"""Changes a tool pushes (Taiga's webhooks), or a card made (a status changed from the portal):
every open page polls that tool's cards at once.

A card polls every 30 s or so; a webhook tells the portal of a change the moment it happens.
The cache is invalidated then (`WidgetCache.invalidate`), and that alone would show the change
at each card's next poll. To show it within seconds, the time of the last pushed change of each
upstream travels with every card answer (`CHANGED_HEADER`, "taiga=1764680000123"), known to
every worker of every replica through the broadcast. A page's cards take turns across their
period (portal.js, `schedule`: six cards at 30 s, one every 5 s), so it learns of the change from
the next answer of any card and polls the cards of that upstream at once; it compares with the
value it was drawn with (`data-changed` on the grid), so a change older than the page moves
nothing. No request is added for this: it rides on the polls the page makes anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from .broadcast import Broadcast

TOPIC = "upstream-changed"
CHANGED_HEADER = "X-Portal-Changed"
TOLD_FOR = 600.0  # seconds a change is told in answers: a page asleep longer reloads its cards anyway


class UpstreamChanges:
    """When each upstream last pushed a change, as milliseconds since the epoch, in this process."""

    def __init__(self, broadcast: Broadcast, upstreams: Iterable[str]) -> None:
        self._broadcast = broadcast
        # Only this portal's upstream names are heard: a payload comes from a shared Redis, and a
        # name goes out in a response header, where a crafted one ("x\r\nSet-Cookie: …") would
        # break every answer and an endless stream of new names would grow this dict.
        self._upstreams = frozenset(upstreams)
        self._at: dict[str, int] = {}
        self._lock = threading.Lock()
        broadcast.subscribe(TOPIC, self._heard)

    def announce(self, upstream: str) -> None:
        """`upstream` changed now: tell every worker (this one too)."""
        self._broadcast.publish(TOPIC, f"{upstream}={int(time.time() * 1000)}")

    def _heard(self, payload: str) -> None:
        name, _, stamp = payload.partition("=")
        if name not in self._upstreams or not (stamp.isascii() and stamp.isdigit()):
            return
        with self._lock:
            self._at[name] = max(self._at.get(name, 0), int(stamp))

    def header(self) -> str:
        """The recent changes as "name=ms;name=ms", or "" when there were none lately."""
        if not self._at:
            return ""
        since = (time.time() - TOLD_FOR) * 1000
        return ";".join(f"{name}={at}" for name, at in sorted(self._at.items()) if at >= since)
