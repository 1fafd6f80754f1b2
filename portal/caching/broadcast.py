"""Tell every worker of every replica that something changed, over one Redis channel.

Workers keep what they read from the shared store (session records, fresh widget entries) so
that a poll needs no round trip. What they keep is trusted only while they listen: a message
names what changed (a session, a cache key or prefix) and every listener forgets it. While the
subscription is down (Redis away, a reconnect under way) nothing kept is trusted and every
request reads the store, as if nothing were kept.

`RedisBroadcast` is the channel; without Redis, `FileBroadcast` does the same between the
workers of one pod (a file on tmpfs) and `LocalBroadcast` within one process. Messages are
`topic` and `payload`; each topic has one handler per process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import redis

from .memo import Memo

log = logging.getLogger(__name__)

RETRY_MIN, RETRY_MAX = 0.5, 10.0  # seconds between reconnects, doubling
DEAF_AFTER = 3.0  # s without a word from Redis (it is pinged every idle second): not listening
KEEP_AT_MOST = 300.0  # seconds a kept value is trusted even with no message (a lost message's bound)
SEPARATOR = "\x1f"

Handler = Callable[[str], None]
V = TypeVar("V")


class Broadcast(Protocol):
    """Publish a change to every process; `epoch` is None while this process may miss one."""

    @property
    def epoch(self) -> int | None: ...

    def subscribe(self, topic: str, handler: Handler) -> None: ...

    def publish(self, topic: str, payload: str) -> None: ...

    def catch_up(self) -> None:
        """Receive what was published meanwhile, for a channel that is read on demand."""


class LocalBroadcast:
    """Within one process: a message reaches this process's handlers at once; always listening."""

    epoch = 1

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = handler

    def publish(self, topic: str, payload: str) -> None:
        handler = self._handlers.get(topic)
        if handler is not None:
            handler(payload)

    def catch_up(self) -> None:
        return None


class FileBroadcast:
    """Between the worker processes of one pod without Redis: an append-only file on tmpfs.

    `publish` appends a line (one small O_APPEND write, whole even with several writers) and
    runs this process's handler; `catch_up`, called at the start of a card's request, reads what
    other processes appended since (one stat when nothing did). The file is emptied when it
    grows past MAX_BYTES; a reader that finds it shorter reads it again from the start.
    """

    MAX_BYTES = 1_000_000
    epoch = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.touch(exist_ok=True)
        self._handlers: dict[str, Handler] = {}
        self._offset = self.path.stat().st_size
        self._lock = threading.Lock()

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = handler

    def sender(self) -> str:
        """Who publishes: this process (made before the fork, the object is every worker's)."""
        return str(os.getpid())

    def publish(self, topic: str, payload: str) -> None:
        handler = self._handlers.get(topic)
        if handler is not None:
            handler(payload)
        line = f"{self.sender()}{SEPARATOR}{topic}{SEPARATOR}{payload}\n".encode()
        try:
            if self.path.stat().st_size > self.MAX_BYTES:
                os.truncate(self.path, 0)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("change not broadcast", extra={"event": "broadcast_failed", "error": str(exc)})

    def catch_up(self) -> None:
        """Run the handlers of what other processes published since the last look."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return
        if size == self._offset:
            return
        with self._lock:
            if size < self._offset:  # emptied meanwhile: everything in it is new
                self._offset = 0
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._offset += len(complete)
        me = self.sender()
        for line in complete.decode(errors="replace").splitlines():
            pid, _, rest = line.partition(SEPARATOR)
            topic, _, payload = rest.partition(SEPARATOR)
            handler = self._handlers.get(topic)
            if pid != me and handler is not None:
                handler(payload)


class RedisBroadcast:
    """A daemon thread per worker, subscribed to one channel; `epoch` says whether it listens.

    The epoch changes on every (re)subscription and is None while not subscribed; a value kept
    under an older epoch may have missed a message and is not trusted. A message published by
    this process reaches its own handlers at once too (not only when the echo comes back).
    """

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self.client = client
        self.channel = channel
        self._handlers: dict[str, Handler] = {}
        self._epoch: int | None = None
        self._epochs = 0
        self._heard = 0.0  # when the channel last said anything (a message, a pong)
        self._pid = 0
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def close(self) -> None:
        """Stop listening (tests; a worker listens until it exits)."""
        self._closed.set()

    @property
    def epoch(self) -> int | None:
        """The current subscription, or None; starts the thread in this process when needed.

        None too when the channel has answered nothing for DEAF_AFTER seconds: a Redis that
        hangs (paused, or cut off without a reset) keeps the socket open and never says it is
        gone, and what the worker kept must not be trusted meanwhile.
        """
        if self._pid != os.getpid():
            self._start()
        if self._epoch is not None and time.monotonic() - self._heard > DEAF_AFTER:
            return None
        return self._epoch

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = handler

    def catch_up(self) -> None:
        return None  # messages arrive on the listening thread

    def publish(self, topic: str, payload: str) -> None:
        """Send a message to every subscriber (a lost one is bounded by KEEP_AT_MOST)."""
        self._dispatch(topic, payload)
        try:
            self.client.publish(self.channel, f"{topic}{SEPARATOR}{payload}")
        except redis.RedisError as exc:
            log.warning(
                "change not broadcast",
                extra={"event": "broadcast_failed", "topic": topic, "error": type(exc).__name__},
            )

    def _dispatch(self, topic: str, payload: str) -> None:
        handler = self._handlers.get(topic)
        if handler is not None:
            handler(payload)

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            # A forked worker inherits the parent's attributes, not its thread.
            self._pid = os.getpid()
            self._epoch = None
            threading.Thread(target=self._run, name="portal-broadcast", daemon=True).start()

    def _run(self) -> None:
        delay = RETRY_MIN
        while not self._closed.is_set():
            try:
                self._listen()
            except (redis.RedisError, OSError) as exc:
                if self._epoch is not None:
                    log.warning(
                        "broadcast channel lost", extra={"event": "broadcast_lost", "error": str(exc)}
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
                    if self._epoch is not None and time.monotonic() - self._heard > DEAF_AFTER:
                        raise redis.ConnectionError("the channel answers no ping")
                    pubsub.ping()  # an idle link that died, or hangs, is noticed within seconds
                    continue
                self._heard = time.monotonic()
                if message["type"] == "subscribe":
                    self._epochs += 1
                    self._epoch = self._epochs
                elif message["type"] == "message":
                    data = message["data"]
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    topic, _, payload = text.partition(SEPARATOR)
                    self._dispatch(topic, payload)
        finally:
            self._epoch = None
            pubsub.close()


class KeptRecords(Generic[V]):
    """Values a worker read from the shared store, trusted while its broadcast listens."""

    def __init__(
        self, broadcast: Broadcast, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.broadcast = broadcast
        self._memo: Memo[str, tuple[V, int, float]] = Memo(size)
        self._clock = clock
        self._changes = 0  # changes seen: a read that overlaps one is not kept
        self._changes_lock = threading.Lock()

    def get(self, key: str) -> V | None:
        epoch = self.broadcast.epoch
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
        return (self.broadcast.epoch, self._changes)

    def keep(self, key: str, value: V, mark: tuple[int | None, int]) -> None:
        epoch, changes = mark
        if epoch is None or changes != self._changes or self.broadcast.epoch != epoch:
            return
        self._memo.put(key, (value, epoch, self._clock()))

    def forget(self, key: str) -> None:
        """A message (or this worker) says the value changed."""
        with self._changes_lock:
            self._changes += 1
        self._memo.pop(key)

    def forget_prefix(self, prefix: str) -> None:
        """Forget every value whose key starts with `prefix`."""
        with self._changes_lock:
            self._changes += 1
        self._memo.pop_where(lambda key: key.startswith(prefix))
