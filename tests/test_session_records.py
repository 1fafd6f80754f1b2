"""Session records kept by each worker: no Redis round trip per poll, yet an ended session ends everywhere.

Two `SessionStore`s on one real Redis stand for two workers (or two replicas); each has its own
subscription to the channel that says which session changed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from portal.auth.sessions import SessionRecord, SessionStore
from portal.caching.broadcast import DEAF_AFTER, RedisBroadcast
from portal.caching.codec import Codec
from portal.caching.stores import FallbackStore, LocalStore, RedisStore
from portal.caching.widget_cache import CacheObserver

from .support.processes import RedisServer, eventually

pytestmark = pytest.mark.peers

CODEC = Codec("test-secret-key-0123456789")


class CountingRedisStore(RedisStore):
    """A Redis store that counts its reads."""

    reads = 0

    def get(self, key: str) -> Any:
        self.reads += 1
        return super().get(key)


def _worker(url: str) -> tuple[SessionStore, CountingRedisStore]:
    redis_store = CountingRedisStore.from_url(url, None, "test:", CODEC)
    assert isinstance(redis_store, CountingRedisStore)
    store = FallbackStore(redis_store, LocalStore(), CacheObserver(), retry_after=0.2)
    sessions = SessionStore(store, RedisBroadcast(redis_store.client, "test:events"))
    return sessions, redis_store


def _listener(sessions: SessionStore) -> RedisBroadcast:
    assert sessions.kept is not None and isinstance(sessions.kept.broadcast, RedisBroadcast)
    return sessions.kept.broadcast


def _subscribed(sessions: SessionStore) -> bool:
    listener = _listener(sessions)
    return eventually(lambda: listener.epoch is not None)


def _record(session_id: str = "s1", refresh_at: float | None = None) -> SessionRecord:
    now = time.time()
    refresh_at = refresh_at or now + 60
    return SessionRecord(session_id, "alice-sub", "kc-sid", "refresh", "id", refresh_at, now + 600)


@pytest.fixture
def workers(redis_server: RedisServer) -> Iterator[tuple[tuple[SessionStore, CountingRedisStore], ...]]:
    first, second = _worker(redis_server.url), _worker(redis_server.url)
    assert _subscribed(first[0]) and _subscribed(second[0])
    yield first, second
    for sessions, _ in (first, second):
        _listener(sessions).close()


def test_a_record_read_once_is_kept_by_the_worker(workers: Any) -> None:
    (first, _), (second, second_redis) = workers
    saved = _record()
    first.save(saved)
    assert second.get("s1") == saved
    extra: list[int] = []
    # A machine too busy for the listener to hear from Redis within DEAF_AFTER makes the worker
    # read the record once more, rightly (seen in a clean run): 50 requests are tried again then.
    for _ in range(3):
        reads = second_redis.reads
        for _ in range(50):
            assert second.get("s1") is not None
        extra.append(second_redis.reads - reads)
        if not extra[-1]:
            break
    assert extra[-1] == 0, extra  # no round trip per request
    assert second.get("s1", fresh=True) is not None
    assert second_redis.reads == reads + 1  # unless asked for the store's copy


def test_a_session_ended_by_another_worker_ends_here(workers: Any) -> None:
    (first, _), (second, _) = workers
    first.save(_record())
    assert second.get("s1") is not None
    first.end("s1")  # a back-channel logout reached the other worker
    assert eventually(lambda: second.get("s1") is None)


def test_a_refresh_by_another_worker_replaces_the_kept_record(workers: Any) -> None:
    (first, _), (second, _) = workers
    first.save(_record(refresh_at=time.time() + 1))
    assert second.get("s1") is not None
    later = time.time() + 300
    first.save(_record(refresh_at=later))
    assert eventually(lambda: (r := second.get("s1")) is not None and r.refresh_at == later)


def test_a_read_that_overlaps_a_change_is_not_kept(workers: Any) -> None:
    (first, _), (second, _) = workers
    first.save(_record())
    kept = second.kept
    assert kept is not None
    mark = kept.mark()  # taken before reading the store
    record = first.get("s1", fresh=True)
    assert record is not None
    kept.forget("s1")  # a message arrived while the store was being read
    kept.keep("s1", record, mark)
    assert kept.get("s1") is None  # the read may predate the change: not trusted
    kept.keep("s1", record, kept.mark())
    assert kept.get("s1") == record


def test_without_the_channel_nothing_is_kept(redis_server: RedisServer) -> None:
    (first, _), (second, second_redis) = _worker(redis_server.url), _worker(redis_server.url)
    assert _subscribed(second)
    first.save(_record())
    assert second.get("s1") is not None
    redis_server.stop()  # the subscription drops: what the worker kept may miss an end
    listener = _listener(second)
    assert eventually(lambda: listener.epoch is None, seconds=15)
    reads = second_redis.reads
    second.get("s1")  # Redis is away: read (and missed), never answered from memory
    assert second_redis.reads == reads + 1
    redis_server.start()  # an empty Redis: the session is gone
    assert _subscribed(second)  # subscribed again, under a new epoch
    assert eventually(lambda: second.get("s1") is None)  # what was kept before is not trusted
    for sessions in (first, second):
        _listener(sessions).close()


def test_a_redis_that_hangs_is_not_listening_within_seconds(workers: Any, redis_server: RedisServer) -> None:
    """Paused, Redis keeps the socket open and never says it is gone: the pings it leaves
    unanswered tell. What the worker kept is not trusted meanwhile; once it answers, the
    subscription comes back under a new epoch."""
    (first, _), (second, second_redis) = workers
    first.save(_record())
    assert second.get("s1") is not None
    listener = _listener(second)
    epoch = listener.epoch
    paused_at = time.monotonic()
    redis_server.pause()
    try:
        assert eventually(lambda: listener.epoch is None, seconds=10)
        assert time.monotonic() - paused_at < DEAF_AFTER + 2.5
        reads = second_redis.reads
        second.get("s1")  # not from memory: the store is read (and, paused, times out)
        assert second_redis.reads == reads + 1
    finally:
        redis_server.resume()
    assert eventually(lambda: listener.epoch not in (None, epoch), seconds=15)


def test_file_and_local_stores_keep_nothing() -> None:
    assert SessionStore(LocalStore()).kept is None


def test_a_change_heard_back_after_the_next_read_still_lets_the_session_through_an_outage(
    workers: Any, redis_server: RedisServer
) -> None:
    """A login or a refresh is broadcast, to this worker too; on a loaded machine that echo may
    arrive after the session's next request. The session stays known alive: when Redis then
    goes away it goes on (within the grace), as a session whose change was heard first does."""
    (first, _), _ = workers
    first.save(_record())
    assert first.get("s1") is not None  # the next request, read before the echo arrives...
    first._forget("s1")  # ...and the echo itself
    redis_server.pause()
    try:
        assert first.get("s1") is None and first.degraded  # nothing to read: Redis is away
        assert first.outage_allows("s1", "kc-sid", "alice-sub", grace=60)
    finally:
        redis_server.resume()


def test_an_end_heard_from_another_worker_stops_the_session_through_an_outage(
    workers: Any, redis_server: RedisServer
) -> None:
    (first, _), (second, _) = workers
    first.save(_record())
    assert first.get("s1") is not None
    second.end("s1")
    assert eventually(lambda: first.get("s1") is None)  # heard: what was kept is gone
    redis_server.pause()
    try:
        first.get("s1")
        assert first.degraded and not first.outage_allows("s1", "kc-sid", "alice-sub", grace=60)
    finally:
        redis_server.resume()
