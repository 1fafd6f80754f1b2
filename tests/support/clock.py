"""A stand-in for `time` in the card views' module (portal/widgets/serving.py), ahead of the real
clock: the views see another clock step while the cache keeps its data as it is."""

from __future__ import annotations

import time


class ViewClock:
    """`monkeypatch.setattr(serving, "time", ViewClock(3600))`; move it on with `ahead += s`."""

    def __init__(self, ahead: float = 0.0) -> None:
        self.ahead = ahead

    def time(self) -> float:
        return time.time() + self.ahead


class StoppedClock:
    """A view clock that moves only when told (`clock.at += 120`): a test that reads a version and
    sends it back cannot see it change because a minute or an hour turned in between."""

    def __init__(self) -> None:
        self.at = time.time()

    def time(self) -> float:
        return self.at
