"""Small arithmetic the figures share: percentiles, ratios, upstream calls per key."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def ratio(part: float, whole: float) -> float:
    return round(part / whole, 3) if whole else 0.0


STATUS_PAGE = "/api/status-page/"
HEARTBEAT = "/api/status-page/heartbeat/"


def calls_per_key(paths: Mapping[str, int]) -> dict[str, int]:
    """Upstream fetches per cache key of the status widget, from the simulator's calls by path.

    One fetch of key `widget:status:shared:<slug>` reads the page and then its heartbeats; a
    fetch that fails on the page never reads the heartbeats. So the page calls count the fetches.
    """
    found: dict[str, int] = {}
    for path, count in paths.items():
        if path.startswith(STATUS_PAGE) and not path.startswith(HEARTBEAT):
            slug = path[len(STATUS_PAGE) :]
            key = f"status:{slug}"
            found[key] = found.get(key, 0) + count
    return found


def amplification_limit(seconds: float, ttl: float, workers: int = 1) -> int:
    """The most fetches per key a run of `seconds` may make: one per TTL plus the first, per cache."""
    return (math.ceil(seconds / ttl) + 1) * workers
