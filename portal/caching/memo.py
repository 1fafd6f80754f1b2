"""A small bounded map, least recently used out first, safe to share between a worker's threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(Generic[K, V]):
    """At most `size` entries, and with `weigh`, at most `max_weight` of their weight (bytes,
    say: entries of very different sizes); `get` marks an entry as recently used."""

    def __init__(self, size: int, max_weight: int = 0, weigh: Callable[[V], int] | None = None) -> None:
        self.size = size
        self.max_weight = max_weight
        self._weigh = weigh
        self._weights: dict[K, int] = {}
        self.weight = 0
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._forget(key)
            self._data[key] = value
            if self._weigh is not None:
                self._weights[key] = weight = self._weigh(value)
                self.weight += weight
            while len(self._data) > self.size or (
                self._weigh is not None and self.weight > self.max_weight and len(self._data) > 1
            ):
                self._forget(next(iter(self._data)))

    def pop(self, key: K) -> None:
        with self._lock:
            self._forget(key)

    def pop_where(self, doomed: Callable[[K], bool]) -> None:
        """Forget every entry whose key `doomed` accepts."""
        with self._lock:
            for key in [key for key in self._data if doomed(key)]:
                self._forget(key)

    def _forget(self, key: K) -> None:
        """Drop `key` (the lock held)."""
        self._data.pop(key, None)
        self.weight -= self._weights.pop(key, 0)

    def __len__(self) -> int:
        return len(self._data)
