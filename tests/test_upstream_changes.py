"""Changes a tool pushes (Taiga's webhooks) travel with every card answer, to every worker.

Two `UpstreamChanges` on one real Redis stand for two workers (or two replicas); the browser's
side (the page polls the cards of that tool at once) is tests/e2e/test_taiga.py.
"""

from __future__ import annotations

import re
import time

import pytest
import redis

from portal.caching import changes
from portal.caching.broadcast import LocalBroadcast, RedisBroadcast
from portal.caching.changes import UpstreamChanges

from .support.processes import RedisServer, eventually


def test_a_change_is_told_until_it_is_old_and_junk_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    broadcast = LocalBroadcast()
    told = UpstreamChanges(broadcast, ["taiga", "gitlab"])
    assert told.header() == ""
    now = 1_764_680_000.0
    monkeypatch.setattr(changes.time, "time", lambda: now)
    told.announce("taiga")
    assert told.header() == "taiga=1764680000000"
    broadcast.publish(changes.TOPIC, "taiga=17")  # an older word never moves the time back
    broadcast.publish(changes.TOPIC, "gitlab=soon")  # not a time: ignored
    broadcast.publish(changes.TOPIC, "=5")
    assert told.header() == "taiga=1764680000000"
    now += changes.TOLD_FOR + 1
    assert told.header() == ""


@pytest.mark.peers
def test_a_change_announced_by_one_worker_is_told_by_the_others(redis_server: RedisServer) -> None:
    listeners = [RedisBroadcast(redis.Redis.from_url(redis_server.url), "test:events") for _ in range(2)]
    try:
        first, second = (UpstreamChanges(b, ["taiga"]) for b in listeners)
        assert all(eventually(lambda b=b: b.epoch is not None) for b in listeners)  # subscribed
        first.announce("taiga")
        assert re.fullmatch(r"taiga=\d{13}", first.header())
        assert eventually(lambda: second.header() == first.header())
    finally:
        for listener in listeners:
            listener.close()


@pytest.mark.peers
def test_a_crafted_name_from_a_shared_redis_never_reaches_a_header(redis_server: RedisServer) -> None:
    """Anyone who can publish on the portal's Redis cannot put a header, or endless names, in answers."""
    listener = RedisBroadcast(redis.Redis.from_url(redis_server.url), "test:events")
    try:
        told = UpstreamChanges(listener, ["taiga", "gitlab"])
        assert eventually(lambda: listener.epoch is not None)
        publisher = RedisBroadcast(redis.Redis.from_url(redis_server.url), "test:events")
        try:
            now = int(time.time() * 1000)  # a current time: an old one would be left out anyway
            for junk in ("taiga\r\nSet-Cookie: session=stolen=1", "harbor", "x" * 5000, "taiga ", "TAIGA"):
                publisher.publish(changes.TOPIC, f"{junk}={now}")
            publisher.publish(changes.TOPIC, "gitlab=\u0661\u0662")  # digits, but not ASCII ones
            told.announce("taiga")  # published last: once heard, everything before it was too
            assert eventually(lambda: told.header() != "")
        finally:
            publisher.close()
        assert re.fullmatch(r"taiga=\d{13}", told.header())
    finally:
        listener.close()
