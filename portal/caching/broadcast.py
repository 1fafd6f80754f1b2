"""Tell every worker of every replica that a session record changed, over a Redis channel.

A worker keeps the session records it has read (see `KeptRecords`) only while it is subscribed
to the channel: a message names a session that ended or changed, and every subscriber forgets
it. While the subscription is down (Redis away, a reconnect under way) nothing is kept and
every request reads the shared store, as before.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import redis

from .memo import Memo

log = logging.getLogger(__name__)

RETRY_MIN, RETRY_MAX = 0.5, 10.0  # seconds between reconnects, doubling
KEEP_AT_MOST = 300.0  # seconds a kept record is trusted even with no message (a lost message's bound)

V = TypeVar("V")


class ChannelListener:
    """A daemon thread per worker, subscribed to one channel; `epoch` says whether it listens.

    The epoch changes on every (re)subscription and is None while not subscribed; an entry kept
    under an older epoch may have missed a message and is not trusted.
    """

    def __init__(self, client: redis.Redis, channel: str, on_message: Callable[[str], None]) -> None:
        self.client = client
        self.channel = channel
        self._on_message = on_message
        self._epoch: int | None = None
        self._epochs = 0
        self._pid = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def close(self) -> None:
        """Stop listening (tests; a worker listens until it exits)."""
        self._closed.set()

    @property
    def epoch(self) -> int | None:
        """The current subscription, or None; starts the thread in this process when needed."""
        if self._pid != os.getpid():
            self._start()
        return self._epoch

    def publish(self, message: str) -> None:
        """Send a message to every subscriber (a lost one is bounded by KEEP_AT_MOST)."""
        try:
            self.client.publish(self.channel, message)
        except redis.RedisError as exc:
            log.warning(
                "session change not broadcast", extra={"event": "session_broadcast_failed", "error": str(exc)}
            )

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            # A forked worker inherits the parent's attributes, not its thread.
            self._pid = os.getpid()
            self._epoch = None
            threading.Thread(target=self._run, name="session-invalidations", daemon=True).start()

    def _run(self) -> None:
        delay = RETRY_MIN
        while not self._closed.is_set():
            try:
                self._listen()
            except (redis.RedisError, OSError) as exc:
                if self._epoch is not None:
                    log.warning(
                        "session channel lost", extra={"event": "session_channel_lost", "error": str(exc)}
                    )
            self._epoch = None
            if self._closed.wait(delay):
                return
            delay = min(RETRY_MAX, delay * 2)

    def _listen(self) -> None:
        pubsub = self.client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self.channel)
            while not self._closed.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message is None:
                    pubsub.ping()  # an idle link that died is noticed within seconds
                    continue
                if message["type"] == "subscribe":
                    self._epochs += 1
                    self._epoch = self._epochs
                elif message["type"] == "message":
                    data = message["data"]
                    self._on_message(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            self._epoch = None
            pubsub.close()


class KeptRecords(Generic[V]):
    """Records a worker read from the shared store, trusted while its listener is subscribed."""

    def __init__(self, size: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._memo: Memo[str, tuple[V, int, float]] = Memo(size)
        self._clock = clock
        self._changes = 0  # changes seen: a read that overlaps one is not kept
        self._changes_lock = threading.Lock()
        self.listener: ChannelListener | None = None

    def get(self, key: str) -> V | None:
        epoch = self.listener.epoch if self.listener else None
        if epoch is None:
            return None
        found = self._memo.get(key)
        if found is None:
            return None
        value, kept_epoch, kept_at = found
        if kept_epoch != epoch or self._clock() - kept_at > KEEP_AT_MOST:
            self._memo.pop(key)
            return None
        return value

    def mark(self) -> tuple[int | None, int]:
        """Taken before reading the store: `keep` refuses the value if anything changed since."""
        return (self.listener.epoch if self.listener else None, self._changes)

    def keep(self, key: str, value: V, mark: tuple[int | None, int]) -> None:
        epoch, changes = mark
        if epoch is None or changes != self._changes or (self.listener and self.listener.epoch != epoch):
            return
        self._memo.put(key, (value, epoch, self._clock()))

    def forget(self, key: str) -> None:
        """A message (or this worker) says the record changed."""
        with self._changes_lock:
            self._changes += 1
        self._memo.pop(key)
