"""A few clients shared by a process's threads, each lent to one call at a time.

For clients that are costly to make, or not safe to share during a call (python-keycloak's
`KeycloakOpenID` changes its connection's headers in `token()`): made on first need, at most
`size` of them, and a call that finds them all busy waits a moment, then gets `busy()` raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

C = TypeVar("C")


class ClientPool(Generic[C]):
    """At most `size` clients, made by `make` when none is free; `lend()` waits `wait` seconds at most."""

    def __init__(self, make: Callable[[], C], size: int, wait: float, busy: Callable[[], Exception]) -> None:
        self._make = make
        self._busy = busy
        self._size = size
        self._wait = wait
        self._free: list[C] = []
        self._made = 0
        self._ready = threading.Condition()

    @property
    def made(self) -> int:
        """How many clients exist (lent or free)."""
        return self._made

    @contextmanager
    def lend(self) -> Iterator[C]:
        """A client for the time of one call; raises `busy()` when all stay lent too long."""
        with self._ready:
            all_lent = not self._free and self._made >= self._size
            if all_lent and not self._ready.wait_for(lambda: bool(self._free), timeout=self._wait):
                raise self._busy()
            client = self._free.pop() if self._free else None
            if client is None:
                self._made += 1
        if client is None:
            try:
                client = self._make()
            except BaseException:
                with self._ready:
                    self._made -= 1
                    self._ready.notify()
                raise
        try:
            yield client
        finally:
            with self._ready:
                self._free.append(client)
                self._ready.notify()
