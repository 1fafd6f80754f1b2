"""The widget cache: single-flight, stale window, breaker, per-user keys, Redis and its loss.

Upstream calls are counted at the simulator (real HTTP), not by instrumenting the code.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from portal.caching.memo import Memo
from portal.caching.widget_cache import (
    CacheObserver,
    FallbackStore,
    FetchPolicy,
    LocalStore,
    RedisStore,
    WidgetCache,
    user_scope,
    widget_key,
)
from portal.upstreams.breaker import BreakerPolicy, CircuitBreaker, CircuitState
from portal.upstreams.http import HttpLimits, Reason, UpstreamUnavailable
from portal.widgets.status.client import StatusPage, UptimeKumaClient
from simulators.base import SimServer

from .support.processes import RedisServer, portal_process

PAGE = "/api/status-page/platform"
POLICY = FetchPolicy(ttl=30, stale_ttl=300, upstream="uptime_kuma", wait_timeout=5)


def _fetcher(kuma: SimServer) -> Callable[[], StatusPage]:
    client = UptimeKumaClient(requests.Session(), kuma.url, None, HttpLimits(timeout=3))
    return lambda: client.status_page("platform")


def _stampede(cache: WidgetCache, key: str, fetch: Callable[[], Any], n: int = 50) -> list[Any]:
    barrier = threading.Barrier(n)

    def one() -> Any:
        barrier.wait()
        return cache.get_or_fetch(key, fetch, POLICY)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: one(), range(n)))


def test_fifty_concurrent_misses_make_one_call_in_process(kuma: SimServer) -> None:
    kuma.latency = 0.3  # long enough for every thread to arrive while the call is in flight
    cache = WidgetCache(LocalStore())

    results = _stampede(cache, "widget:status:shared:platform", _fetcher(kuma))

    assert kuma.count(PAGE) == 1
    assert all(r.state == "ok" and r.value.title == "Plateforme" for r in results)
    assert sorted({r.source for r in results}) == ["coalesced", "miss"]


def test_fifty_concurrent_misses_make_one_call_with_redis(kuma: SimServer, redis_server: RedisServer) -> None:
    kuma.latency = 0.3
    cache = WidgetCache(RedisStore.from_url(redis_server.url, None, "t1:"))
    results = _stampede(cache, "widget:status:shared:platform", _fetcher(kuma))
    assert kuma.count(PAGE) == 1
    assert all(r.state == "ok" for r in results)


def test_two_processes_sharing_redis_make_one_call(
    kuma: SimServer, redis_server: RedisServer, portal_config: dict[str, Any], tmp_path: Path
) -> None:
    """50 concurrent requests on a cold key, split over two gunicorn processes, one Redis."""
    portal_config["cache"]["redis_url"] = redis_server.url
    portal_config["widgets"]["status"]["slugs"] = ["platform"]
    kuma.latency = 0.5
    with (
        portal_process(portal_config, tmp_path, workers=1, threads=32) as first,
        portal_process(portal_config, tmp_path, workers=1, threads=32) as second,
    ):
        barrier = threading.Barrier(50)

        def one(index: int) -> int:
            base = first if index % 2 else second
            barrier.wait()
            return requests.get(f"{base}/widgets/status", timeout=20).status_code

        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(one, range(50)))

    assert statuses == [200] * 50
    assert kuma.count(PAGE) == 1
    assert kuma.count("/api/status-page/heartbeat/platform") == 1


def test_two_users_never_share_a_per_user_key(kuma: SimServer) -> None:
    cache = WidgetCache(LocalStore())
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="taiga")
    alice = widget_key("tasks", user_scope("alice"), "open")
    bob = widget_key("tasks", user_scope("bob"), "open")
    # A subject crafted to look like another key's scope must not reach that key.
    forged = widget_key("tasks", user_scope("alice:open"), "")

    assert len({alice, bob, forged}) == 3
    assert cache.get_or_fetch(alice, lambda: ["alice's task"], policy).value == ["alice's task"]
    assert cache.get_or_fetch(bob, lambda: ["bob's task"], policy).value == ["bob's task"]
    assert cache.get_or_fetch(forged, lambda: ["forged"], policy).value == ["forged"]
    assert cache.get_or_fetch(alice, lambda: ["refetched"], policy).value == ["alice's task"]
    assert alice.startswith("widget:tasks:user:alice:")


def test_shared_keys_hold_no_user(app: Flask) -> None:
    client = app.test_client()
    client.get("/widgets/status")
    keys = list(app.extensions["portal"].store._cache._cache)  # the SimpleCache's own dict
    assert keys
    assert all(":shared:" in key for key in keys if key.startswith("widget:"))
    assert not any("demo" in key for key in keys)


def test_stale_then_error_when_the_stale_window_ends(kuma: SimServer) -> None:
    cache = WidgetCache(LocalStore(), failure_hold=0.5)
    policy = FetchPolicy(ttl=0.2, stale_ttl=1.5, upstream="uptime_kuma", wait_timeout=4)
    fetch = _fetcher(kuma)
    key = "widget:status:shared:platform"
    assert cache.get_or_fetch(key, fetch, policy).state == "ok"

    kuma.set_fault("error500")
    time.sleep(0.3)
    stale = cache.get_or_fetch(key, fetch, policy)
    assert stale.state == "stale"
    assert stale.value is not None and "HTTP 500" in str(stale.error)

    time.sleep(2.0)  # past ttl + stale_ttl: the entry is gone
    gone = cache.get_or_fetch(key, fetch, policy)
    assert gone.state == "error"
    assert gone.value is None


def test_breaker_opens_after_repeated_failures_and_retries_after_backoff(kuma: SimServer) -> None:
    cache = WidgetCache(
        LocalStore(),
        {"uptime_kuma": BreakerPolicy(threshold=2, backoff=0.6, backoff_max=5)},
        failure_hold=0.5,
    )
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="uptime_kuma", wait_timeout=4)
    kuma.set_fault("error500")
    fetch = _fetcher(kuma)

    for key in ("a", "b"):  # two keys of the same upstream, each failing once
        assert cache.get_or_fetch(f"widget:status:shared:{key}", fetch, policy).state == "error"
    assert cache.breaker("uptime_kuma").state is CircuitState.OPEN

    calls = kuma.count()
    for key in ("c", "d", "e"):
        result = cache.get_or_fetch(f"widget:status:shared:{key}", fetch, policy)
        assert result.state == "error"
        assert "HTTP 500" in str(result.error)  # the card says what the last failure was
    assert kuma.count() == calls  # open: no calls at all

    kuma.reset()
    time.sleep(0.7)  # the pause is over: one trial goes through and closes the circuit
    assert cache.get_or_fetch("widget:status:shared:f", fetch, policy).state == "ok"
    assert cache.breaker("uptime_kuma").state is CircuitState.CLOSED


def test_breaker_backoff_doubles_after_a_failed_trial() -> None:
    now = {"t": 0.0}
    breaker = CircuitBreaker(
        "x", BreakerPolicy(threshold=1, backoff=10, backoff_max=25), clock=lambda: now["t"]
    )
    breaker.record_failure("down")
    assert breaker.seconds_until_retry() == 10
    now["t"] = 10
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # only one at a time
    breaker.record_failure("still down")
    assert breaker.seconds_until_retry() == 20
    now["t"] = 30
    assert breaker.allow()
    breaker.record_failure("still down")
    assert breaker.seconds_until_retry() == 25  # capped


def test_redis_stopped_mid_test_falls_back_without_errors(
    kuma: SimServer, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[bool] = []

    class Recorder(CacheObserver):
        def backend_fallback(self, active: bool) -> None:
            events.append(active)

    recorder = Recorder()
    store = FallbackStore(
        RedisStore.from_url(redis_server.url, None, "t2:"), LocalStore(), recorder, retry_after=0.3
    )
    cache = WidgetCache(store, observer=recorder)
    fetch = _fetcher(kuma)
    assert cache.get_or_fetch("widget:status:shared:platform", fetch, POLICY).state == "ok"
    assert store.shared

    redis_server.stop()
    result = cache.get_or_fetch("widget:status:shared:platform", fetch, POLICY)
    assert result.state == "ok"  # fetched again into the in-process store
    assert store.degraded and not store.shared
    assert events == [True]
    assert "shared cache unreachable" in caplog.text

    redis_server.start()  # same port
    time.sleep(0.35)
    assert cache.get_or_fetch("widget:status:shared:other", lambda: "x", POLICY).state == "ok"
    assert not store.degraded
    assert events == [True, False]


def test_redis_stopped_under_the_running_portal_gives_no_5xx(
    kuma: SimServer, redis_server: RedisServer, portal_config: dict[str, Any], tmp_path: Path
) -> None:
    portal_config["cache"]["redis_url"] = redis_server.url
    with portal_process(portal_config, tmp_path, workers=2) as url:
        assert requests.get(f"{url}/widgets/status", timeout=10).status_code == 200
        redis_server.stop()
        statuses = [
            requests.get(f"{url}{path}", timeout=10).status_code
            for path in ("/widgets/status", "/", "/readyz") * 5
        ]
        ready = requests.get(f"{url}/readyz", timeout=10).json()
        redis_server.start()
        time.sleep(5.5)  # the fallback rechecks Redis every 5 s
        after = requests.get(f"{url}/readyz", timeout=10).json()
    assert all(status < 500 for status in statuses), statuses
    assert set(statuses) == {200}
    assert ready["cache"] == "local (redis unreachable)"
    assert after["cache"] == "redis"


def test_an_unreadable_entry_is_a_miss(kuma: SimServer, redis_server: RedisServer) -> None:
    store = RedisStore.from_url(redis_server.url, None, "t3:")
    raw = redis.Redis.from_url(redis_server.url)
    raw.set("t3:widget:status:shared:platform", b"!not a pickle at all")
    cache = WidgetCache(store)
    result = cache.get_or_fetch("widget:status:shared:platform", _fetcher(kuma), POLICY)
    assert result.state == "ok"
    assert result.source == "miss"


def test_followers_share_the_leaders_failure(kuma: SimServer) -> None:
    kuma.latency = 0.3
    kuma.set_fault("timeout", seconds=10)
    client = UptimeKumaClient(requests.Session(), kuma.url, None, HttpLimits(timeout=0.8))
    cache = WidgetCache(LocalStore())
    results = _stampede(cache, "widget:status:shared:platform", lambda: client.status_page("platform"), n=20)
    assert kuma.count(PAGE) == 1
    assert all(r.state == "error" and "0.8 s" in str(r.error) for r in results)


def test_a_reason_renders_in_both_languages(app: Flask) -> None:
    reason = Reason.of("%(upstream)s did not answer within %(seconds)s s", upstream="Taiga", seconds="4")
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        from portal.web.i18n import translate_reason

        assert translate_reason(reason) == "Taiga n'a pas répondu en 4 s"
    assert str(reason) == "Taiga did not answer within 4 s"
    assert isinstance(UpstreamUnavailable("Taiga", reason).message, str)


class _CountingStore(LocalStore):
    """A store that counts its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str) -> Any:
        self.reads += 1
        return super().get(key)


def test_a_fresh_entry_is_served_from_the_worker_without_a_store_read(kuma: SimServer) -> None:
    store = _CountingStore()
    cache = WidgetCache(store)
    policy = FetchPolicy(ttl=1, stale_ttl=300, upstream="uptime_kuma")
    key = "widget:status:shared:platform"
    assert cache.get_or_fetch(key, _fetcher(kuma), policy).source == "miss"
    reads = store.reads
    hits = [cache.fresh(key, policy) for _ in range(20)]
    assert all(hit is not None and hit.source == "hit" for hit in hits)
    assert store.reads == reads  # the entry the fetch wrote is kept while fresh
    time.sleep(1.1)
    assert cache.fresh(key, policy) is None  # no longer fresh: the store is asked again
    assert store.reads == reads + 1


def test_an_entry_another_worker_wrote_is_read_once_then_kept(kuma: SimServer) -> None:
    shared = _CountingStore()
    writer, reader = WidgetCache(shared), WidgetCache(shared)
    key = "widget:status:shared:platform"
    writer.get_or_fetch(key, _fetcher(kuma), POLICY)
    reads = shared.reads
    assert all(reader.fresh(key, POLICY) is not None for _ in range(10))
    assert shared.reads == reads + 1


def test_memo_forgets_the_least_recently_used() -> None:
    memo: Memo[str, int] = Memo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1
    memo.put("c", 3)
    assert memo.get("b") is None and memo.get("a") == 1 and memo.get("c") == 3
