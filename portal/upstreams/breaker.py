"""A circuit breaker per upstream: a failing tool is retried with backoff, not on every poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any


class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When the circuit opens and how long it stays open."""

    threshold: int = 3
    backoff: float = 10.0
    backoff_max: float = 60.0


class CircuitBreaker:
    """Counts consecutive failures of one upstream; open means "do not call, serve what we have".

    After `threshold` consecutive failures the circuit opens for `backoff` seconds, doubling
    on each failed trial up to `backoff_max`. When the pause is over one caller is let through
    (half-open); its success closes the circuit, its failure opens it again for longer.
    """

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, CircuitState], None] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._failures = 0
        self._opened = 0
        self._open_until = 0.0
        self._trial_running = False
        self._trial_started = 0.0
        self._state = CircuitState.CLOSED
        self.last_error: Any = None  # what the last failure said (shown while open)
        self._failed_at = 0.0  # the wall-clock time of the last failure (others' data is dated so)

    @property
    def state(self) -> CircuitState:
        """The state as of now (an open circuit whose pause is over reads as half-open)."""
        with self._lock:
            return self._current_state()

    def _current_state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() >= self._open_until:
            return CircuitState.HALF_OPEN
        return self._state

    def seconds_until_retry(self) -> float:
        """How long until the next trial call is allowed (0 when calls may go through)."""
        with self._lock:
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(0.0, self._open_until - self._clock())

    def allow(self) -> bool:
        """May a call go to the upstream now? In half-open, only one trial at a time."""
        with self._lock:
            state = self._current_state()
            if state is CircuitState.CLOSED:
                return True
            # A trial whose caller never reported back (it crashed) is given up after a while.
            trial_alive = self._trial_running and self._clock() - self._trial_started < 60
            if state is CircuitState.OPEN or trial_alive:
                return False
            self._trial_running = True
            self._trial_started = self._clock()
            self._set_state(CircuitState.HALF_OPEN)
            return True

    def record_success(self) -> None:
        """A call succeeded: close the circuit."""
        with self._lock:
            self._failures = 0
            self._opened = 0
            self._trial_running = False
            self.last_error = None
            self._set_state(CircuitState.CLOSED)

    def answered_since(self, moment: float) -> None:
        """Another process reached the upstream at `moment` (wall clock: the fetch time of data
        it shared). After this breaker's last failure, that says the upstream is back: the
        circuit closes, as after a trial of its own, rather than keep serving the outage's
        failure to this process's requests until its pause ends."""
        with self._lock:
            if self.last_error is None or moment <= self._failed_at:
                return
        self.record_success()

    def record_failure(self, error: Any, retry_after: float | None = None) -> None:
        """A call failed: count it, and open the circuit at the threshold or after a failed trial.

        `retry_after` is how long the upstream asked us to wait (a 429's Retry-After): the
        circuit opens at once, for at least that long, whatever the count.
        """
        with self._lock:
            self.last_error = error
            self._failed_at = time.time()
            self._failures += 1
            trial_failed = self._trial_running
            self._trial_running = False
            # Calls already under way when the circuit opened fail in their turn (a hang ends
            # every one of them at its timeout): they say nothing new and do not lengthen the
            # pause. Only the failure that opens it, and a failed trial, do.
            already_open = self._state is CircuitState.OPEN and not trial_failed
            if already_open:
                pause = retry_after or 0.0
            elif trial_failed or self._failures >= self.policy.threshold:
                pause = min(self.policy.backoff * (2**self._opened), self.policy.backoff_max)
                pause = max(pause, retry_after or 0.0)
                self._opened += 1
            elif retry_after is not None:
                pause = retry_after  # asked to wait, not (yet) failing: exactly as long as asked
            else:
                return
            self._open_until = max(self._open_until, self._clock() + pause)
            self._set_state(CircuitState.OPEN)

    def _set_state(self, state: CircuitState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change:
                self._on_change(self.name, state)
