"""How many changes one person may send through the cards in a minute.

Each change reads and writes the tool with the portal's service account, then drops what the
cards hold (the next poll reads the tool again): a person's script, or a key held down on a
quick action, would otherwise make the portal hammer Taiga on everyone's behalf. Counted per
worker (a pod's workers together allow a few times the limit): it bounds, it does not meter.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

WRITES_PER_MINUTE = 30  # far above a person's pace on a status menu
WINDOW = 60.0  # seconds
PEOPLE_KEPT = 10_000  # the least recent writers are forgotten past this many


class WritePace:
    """At most `limit` changes per person in any `window` seconds."""

    def __init__(self, limit: int = WRITES_PER_MINUTE, window: float = WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._times: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, subject: str) -> bool:
        """True, and the change counted, when this person is under the limit."""
        now = time.monotonic()
        with self._lock:
            times = self._times.pop(subject, None) or deque()
            while times and now - times[0] >= self.window:
                times.popleft()
            allowed = len(times) < self.limit
            if allowed:
                times.append(now)
            self._times[subject] = times
            while len(self._times) > PEOPLE_KEPT:
                self._times.popitem(last=False)
            return allowed
