"""The widget cache: single-flight, honest freshness, bounded waiting, invalidation, Redis and its loss.

Upstream calls are counted at the simulator (real HTTP) or by the fetch itself, not by
instrumenting the cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask import Flask

from portal.caching.broadcast import LocalBroadcast, RedisBroadcast
from portal.caching.codec import Codec
from portal.caching.memo import Memo
from portal.caching.pod_store import PodStore
from portal.caching.stores import CacheStore, FallbackStore, LocalStore, RedisStore
from portal.caching.widget_cache import (
    CacheObserver,
    Entry,
    FetchPolicy,
    WidgetCache,
    fingerprint,
    user_scope,
    widget_key,
)
from portal.state import portal_state
from portal.upstreams.breaker import BreakerPolicy, CircuitBreaker, CircuitState
from portal.upstreams.errors import Reason, UpstreamBadResponse, UpstreamUnavailable
from portal.upstreams.http import HttpLimits
from portal.widgets.status.client import StatusPage, UptimeKumaClient
from simulators.base import SimServer

from .support.processes import RedisServer, eventually, portal_process

PAGE = "/api/status-page/platform"
KEY = "widget:status:shared:platform"
POLICY = FetchPolicy(ttl=30, stale_ttl=300, upstream="uptime_kuma", timeout=4)

CODEC = Codec("test-secret-key-0123456789")


def seeding(policy: FetchPolicy) -> FetchPolicy:
    """`policy` for a test's first read, which must land: it waits for its fetch even on a
    loaded machine (a fetch thread can take longer than a short `answer_within` to run)."""
    return replace(policy, answer_within=5)


def _fetcher(kuma: SimServer, timeout: float = 3) -> Callable[[], StatusPage]:
    client = UptimeKumaClient(requests.Session(), kuma.url, None, HttpLimits(timeout=timeout))
    return lambda: client.status_page("platform")


def _stampede(cache: WidgetCache, key: str, fetch: Callable[[], Any], n: int = 50) -> list[Any]:
    barrier = threading.Barrier(n)

    def one() -> Any:
        barrier.wait()
        return cache.get_or_fetch(key, fetch, POLICY)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: one(), range(n)))


class Gate:
    """A fetch that blocks until released, counting its calls (an upstream the test holds)."""

    def __init__(self, value: Any = "value") -> None:
        self.value = value
        self.calls = 0
        self.open = threading.Event()

    def __call__(self) -> Any:
        self.calls += 1
        self.open.wait(10)
        return self.value


# --- single flight ------------------------------------------------------------------------------


def test_fifty_concurrent_misses_make_one_call_in_process(kuma: SimServer) -> None:
    kuma.latency = 0.3  # long enough for every thread to arrive while the call is in flight
    cache = WidgetCache(LocalStore(), max_waiting=50)

    results = _stampede(cache, KEY, _fetcher(kuma))

    assert kuma.count(PAGE) == 1
    assert all(r.state == "ok" and r.value.title == "Plateforme" for r in results)
    assert sorted({r.source for r in results}) == ["coalesced", "miss"]


def test_fifty_concurrent_misses_make_one_call_with_redis(kuma: SimServer, redis_server: RedisServer) -> None:
    kuma.latency = 0.3
    cache = WidgetCache(RedisStore.from_url(redis_server.url, None, "t1:", CODEC), max_waiting=50)
    results = _stampede(cache, KEY, _fetcher(kuma))
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

    logged = [line for log in tmp_path.glob("portal-*.log") for line in log.read_text().splitlines()]
    errors = [line for line in logged if '"ERROR"' in line or '"status":500' in line]
    assert statuses == [200] * 50, errors  # what the portals logged says why
    # On a loaded machine Redis may take longer than the store's socket timeout (0.5 s) to
    # answer: a process then uses its own store for a moment (logged), and fetches on its own.
    fell_back = sum('"event":"cache_fallback"' in line for line in logged)
    calls = 1 if not fell_back else 2
    assert 1 <= kuma.count(PAGE) <= calls, f"{fell_back} fallbacks to the in-process store"
    assert kuma.count(PAGE) == kuma.count("/api/status-page/heartbeat/platform")


def test_two_users_never_share_a_per_user_key() -> None:
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
    store = portal_state(app).store
    assert isinstance(store, PodStore)
    keys = store.keys()
    assert keys
    assert all(":shared:" in key for key in keys if key.startswith("widget:"))
    assert not any("demo" in key for key in keys)


# --- failures, stale data, breaker ----------------------------------------------------------


def test_stale_then_error_when_the_stale_window_ends(kuma: SimServer) -> None:
    cache = WidgetCache(LocalStore(), failure_hold=0.5)
    policy = FetchPolicy(ttl=0.2, stale_ttl=1.5, upstream="uptime_kuma", timeout=2)
    fetch = _fetcher(kuma)
    assert cache.get_or_fetch(KEY, fetch, policy).state == "ok"

    kuma.set_fault("error500")
    time.sleep(0.3)
    stale = cache.get_or_fetch(KEY, fetch, policy)
    assert stale.state == "stale"
    assert stale.value is not None and str(stale.error) == "Uptime Kuma answered HTTP 500"

    time.sleep(2.0)  # past ttl + stale_ttl: the entry is gone
    gone = cache.get_or_fetch(KEY, fetch, policy)
    assert gone.state == "error"
    assert gone.value is None


def test_breaker_opens_after_repeated_failures_and_retries_after_backoff(kuma: SimServer) -> None:
    cache = WidgetCache(
        LocalStore(),
        {"uptime_kuma": BreakerPolicy(threshold=2, backoff=0.6, backoff_max=5)},
        failure_hold=0.5,
    )
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="uptime_kuma", timeout=2)
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


def test_calls_under_way_when_the_circuit_opens_do_not_lengthen_its_pause() -> None:
    """A hang ends every call in flight at its timeout, one after another (each person's own
    parts): the circuit opens once, for `backoff`, not for `backoff_max` (it took GitLab's
    cards five minutes to come back after a 30 s hang)."""
    now = {"t": 0.0}
    breaker = CircuitBreaker(
        "x", BreakerPolicy(threshold=3, backoff=10, backoff_max=300), clock=lambda: now["t"]
    )
    for _ in range(16):  # sixteen fetches that were under way, failing together
        breaker.record_failure("timed out")
    assert breaker.seconds_until_retry() == 10
    now["t"] = 5
    breaker.record_failure("timed out", retry_after=30)  # a 429 still keeps every call away
    assert breaker.seconds_until_retry() == 30
    now["t"] = 35
    assert breaker.allow()  # the trial
    breaker.record_failure("still down")
    assert breaker.seconds_until_retry() == 20  # a failed trial doubles the pause


def test_a_retry_after_opens_the_circuit_for_exactly_that_long() -> None:
    now = {"t": 0.0}
    breaker = CircuitBreaker("x", BreakerPolicy(threshold=3, backoff=10), clock=lambda: now["t"])
    breaker.record_failure("throttled", retry_after=2.5)  # one 429: below the threshold
    assert breaker.state is CircuitState.OPEN
    now["t"] = 2.4
    assert not breaker.allow()
    now["t"] = 2.5
    assert breaker.allow()


def test_a_429_keeps_every_call_away_until_its_retry_after() -> None:
    cache = WidgetCache(LocalStore(), failure_hold=0.5)
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="gitlab", upstream_label="GitLab", timeout=2)
    calls: list[float] = []

    def throttled() -> Any:
        calls.append(time.monotonic())
        raise UpstreamUnavailable(
            "GitLab", Reason.of("%(upstream)s is limiting", upstream="GitLab"), retry_after=1.2
        )

    first = cache.get_or_fetch("widget:pipelines:shared:a", throttled, policy)
    assert first.state == "error"
    for key in ("b", "c", "d"):  # other keys of the same upstream: no call before Retry-After
        assert cache.get_or_fetch(f"widget:pipelines:shared:{key}", throttled, policy).state == "error"
    assert len(calls) == 1
    time.sleep(1.25)
    cache.get_or_fetch("widget:pipelines:shared:e", lambda: "ok", policy)
    assert cache.get_or_fetch("widget:pipelines:shared:e", lambda: "ok", policy).value == "ok"


def test_followers_share_the_leaders_failure(kuma: SimServer) -> None:
    kuma.latency = 0.3
    kuma.set_fault("timeout", seconds=10)
    cache = WidgetCache(LocalStore(), max_waiting=20)
    policy = FetchPolicy(ttl=30, stale_ttl=300, upstream="uptime_kuma", timeout=0.8, answer_within=2)
    fetch = _fetcher(kuma, timeout=0.8)
    barrier = threading.Barrier(20)

    def one() -> Any:
        barrier.wait()
        return cache.get_or_fetch(KEY, fetch, policy)

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: one(), range(20)))
    assert kuma.count(PAGE) == 1
    assert all(r.state == "error" and "0.8 s" in str(r.error) for r in results)


# --- honest freshness and bounded waiting (a hung upstream) --------------------------------


def test_data_past_its_refresh_time_is_stale_while_the_refresh_hangs() -> None:
    """Old data served while another request's fetch hangs says stale, as if it had fetched itself."""
    cache = WidgetCache(LocalStore(), max_waiting=1)
    policy = FetchPolicy(
        ttl=0.3, stale_ttl=60, upstream="u", upstream_label="Upstream", timeout=0.5, answer_within=0.1
    )
    assert cache.get_or_fetch(KEY, lambda: "v1", policy).state == "ok"
    time.sleep(0.35)  # past the TTL: the next request starts a refresh, which hangs
    gate = Gate("v2")
    during = cache.get_or_fetch(KEY, gate, policy)
    assert during.state == "ok" and during.source == "coalesced"  # within the time a refresh takes

    time.sleep(policy.grace + 0.05)  # the data is now older than ttl + grace
    late = [cache.get_or_fetch(KEY, gate, policy) for _ in range(5)]
    assert all(r.state == "stale" and r.value == "v1" for r in late)
    assert str(late[0].error) == "Upstream is taking too long to answer" and late[0].fetching
    assert gate.calls == 1
    gate.open.set()
    assert eventually(lambda: cache.get_or_fetch(KEY, gate, policy).value == "v2")


def test_once_its_upstream_has_failed_old_data_is_answered_stale_at_once_not_after_a_wait() -> None:
    """A refresh after a failure (a hang, an outage) will most likely fail too: the poll holds no
    thread waiting for it, however long it may wait for a refresh of a healthy upstream."""
    cache = WidgetCache(LocalStore(), failure_hold=0.05, max_waiting=1)
    policy = FetchPolicy(
        ttl=0.1, stale_ttl=60, upstream="u", upstream_label="Upstream", timeout=0.1, answer_within=30
    )
    assert cache.get_or_fetch(KEY, lambda: "v1", policy).state == "ok"
    time.sleep(0.1 + policy.grace + 0.05)  # past the time data counts as current

    def down() -> str:
        raise UpstreamUnavailable("u", Reason.of("Upstream cannot be reached"), "test")

    failed = cache.get_or_fetch(KEY, down, policy)
    assert (failed.state, failed.value, str(failed.error)) == ("stale", "v1", "Upstream cannot be reached")
    time.sleep(0.1)  # past the failure's hold: the next poll starts a refresh, which hangs
    gate = Gate("v2")
    during = cache.get_or_fetch(KEY, gate, policy)
    # Answered while the refresh still hangs (it waited for nothing, not answer_within's 30 s):
    assert not gate.open.is_set() and eventually(lambda: gate.calls == 1)
    assert (during.state, during.value, str(during.error)) == ("stale", "v1", "Upstream cannot be reached")
    gate.open.set()  # the upstream is back: its data lands, and the breaker forgets the failure
    assert eventually(lambda: cache.get_or_fetch(KEY, gate, policy).value == "v2")
    assert cache.breaker("u").last_error is None


def test_a_failure_another_worker_met_spares_this_worker_the_wait_too() -> None:
    """Each worker has its own breaker; the key's failure record, shared, says it for them all."""
    store = LocalStore()
    first, second = (WidgetCache(store, failure_hold=0.05, max_waiting=1) for _ in range(2))
    policy = FetchPolicy(
        ttl=0.1, stale_ttl=60, upstream="u", upstream_label="Upstream", timeout=0.1, answer_within=30
    )
    assert first.get_or_fetch(KEY, lambda: "v1", policy).state == "ok"
    time.sleep(0.1 + policy.grace + 0.05)

    def down() -> str:
        raise UpstreamUnavailable("u", Reason.of("Upstream cannot be reached"), "test")

    assert first.get_or_fetch(KEY, down, policy).state == "stale"
    assert second.breaker("u").last_error is None
    time.sleep(0.1)  # past the failure's hold: the second worker's poll starts a refresh, which hangs
    gate = Gate("v2")
    during = second.get_or_fetch(KEY, gate, policy)
    assert not gate.open.is_set() and eventually(lambda: gate.calls == 1)
    assert (during.state, during.value, str(during.error)) == ("stale", "v1", "Upstream cannot be reached")
    gate.open.set()
    assert eventually(lambda: second.get_or_fetch(KEY, gate, policy).value == "v2")


def test_a_new_failure_another_worker_met_is_said_not_this_workers_older_one() -> None:
    """A worker whose own last call failed long ago (too large an answer), with no call of its
    own since the upstream came back, says the failure of now (unreachable), which another
    worker met: the key's record is newer than its breaker's memory."""
    store = LocalStore()
    first, second = (WidgetCache(store, failure_hold=0.05, max_waiting=1) for _ in range(2))
    policy = FetchPolicy(
        ttl=0.1, stale_ttl=60, upstream="u", upstream_label="Upstream", timeout=0.1, answer_within=30
    )
    past_ttl = 0.1 + policy.grace + 0.05

    def fails(words: str) -> Callable[[], str]:
        def call() -> str:
            raise UpstreamBadResponse("u", Reason.of(words), "test")

        return call

    assert first.get_or_fetch(KEY, lambda: "v1", policy).state == "ok"
    time.sleep(past_ttl)
    assert (
        str(second.get_or_fetch(KEY, fails("Upstream sent too much"), policy).error)
        == "Upstream sent too much"
    )
    time.sleep(0.06)  # past the failure's hold: the first worker finds the upstream back
    assert eventually(lambda: first.get_or_fetch(KEY, lambda: "v2", policy).value == "v2")
    time.sleep(past_ttl)
    assert str(first.get_or_fetch(KEY, fails("Upstream cannot be reached"), policy).error) == (
        "Upstream cannot be reached"
    )
    time.sleep(0.06)
    gate = Gate("v3")
    during = second.get_or_fetch(KEY, gate, policy)  # its refresh hangs
    assert (during.state, during.value, str(during.error)) == ("stale", "v2", "Upstream cannot be reached")
    gate.open.set()


def test_a_worker_whose_circuit_is_open_takes_another_workers_later_success_as_the_upstream_back() -> None:
    """The demo's two workers after an outage: one found the upstream back and fetched, the
    other's circuit was still open from the outage (its pause up to a minute). Its polls showed
    the other's new data, past its TTL, as stale "answered HTTP 500" for that long (in both
    workers' turn: the card flipped between fresh and failing). An entry fetched after this
    worker's last failure says the upstream answered since: its circuit closes, it refreshes."""
    store = LocalStore()
    policies = {"u": BreakerPolicy(threshold=1, backoff=60, backoff_max=60)}
    first, second = (WidgetCache(store, policies, failure_hold=0.05, max_waiting=1) for _ in range(2))
    policy = FetchPolicy(
        ttl=0.1, stale_ttl=60, upstream="u", upstream_label="Upstream", timeout=0.1, answer_within=30
    )
    past_ttl = 0.1 + policy.grace + 0.05

    def down() -> str:
        raise UpstreamUnavailable("u", Reason.of("Upstream answered HTTP 500"), "test")

    assert first.get_or_fetch(KEY, lambda: "v1", policy).state == "ok"
    time.sleep(past_ttl)
    assert second.get_or_fetch(KEY, down, policy).state == "stale"
    assert second.breaker("u").state is CircuitState.OPEN  # for a minute
    time.sleep(0.06)  # past the failure's hold: the first worker finds the upstream back
    assert eventually(lambda: first.get_or_fetch(KEY, lambda: "v2", policy).value == "v2")
    time.sleep(past_ttl)
    answers = [second.get_or_fetch(KEY, lambda: "v3", policy)]
    assert eventually(
        lambda: answers.append(second.get_or_fetch(KEY, lambda: "v3", policy)) or answers[-1].value == "v3"
    )
    assert all(answer.error is None for answer in answers), [str(a.error) for a in answers]
    assert second.breaker("u").state is CircuitState.CLOSED
    # Its own failure after the other's success still counts: the circuit opens again.
    time.sleep(past_ttl)
    assert str(second.get_or_fetch(KEY, down, policy).error) == "Upstream answered HTTP 500"
    assert second.breaker("u").state is CircuitState.OPEN


def test_an_upstream_that_fails_fast_is_said_at_every_poll_while_the_data_is_still_current() -> None:
    cache = WidgetCache(LocalStore(), failure_hold=0.01, max_waiting=1)
    # A poll waits up to refresh_within for its refresh, which fails at once: 2 s, so that a
    # loaded machine's thread start does not make it answer before (with the data, as current).
    policy = FetchPolicy(
        ttl=0.1, stale_ttl=60, upstream="u", upstream_label="Upstream", timeout=5, refresh_within=2
    )
    assert cache.get_or_fetch(KEY, lambda: "v1", policy).state == "ok"
    time.sleep(0.15)  # past the TTL, well within the grace of a refresh under way

    def down() -> str:
        raise UpstreamUnavailable("u", Reason.of("Upstream cannot be reached"), "test")

    for _ in range(3):  # each poll refreshes (the failure's hold is over) and waits refresh_within
        time.sleep(0.02)
        said = cache.get_or_fetch(KEY, down, policy)
        assert (said.state, said.value, str(said.error)) == ("stale", "v1", "Upstream cannot be reached")


class Slow:
    """A fetch that takes `seconds` and returns the next of its values."""

    def __init__(self, seconds: float, *values: str) -> None:
        self.seconds = seconds
        self.values = list(values)

    def __call__(self) -> str:
        time.sleep(self.seconds)
        return self.values.pop(0)


def test_a_slow_refresh_of_current_data_holds_the_poll_only_refresh_within() -> None:
    """Data past its TTL but within the time a refresh takes is current: the poll waits a little
    for its refresh, answers with that data when the refresh is slower, and the next poll gets
    what the refresh brought. Without data, or with data past that time, it waits longer.
    (A fetch of 1 s against waits of 0.1 s, and the refresh's landing waited for rather than
    slept on: what waited and what did not stays plain on a loaded machine.)"""
    cache = WidgetCache(LocalStore(), max_waiting=2)
    policy = FetchPolicy(ttl=1.5, stale_ttl=60, upstream="u", timeout=2, answer_within=3, refresh_within=0.1)
    slow = Slow(1.0, "v1", "v2", "v3")

    def timed() -> tuple[Any, str, float]:
        began = time.monotonic()
        result = cache.get_or_fetch(KEY, slow, policy)
        return result.value, result.state, time.monotonic() - began

    value, state, seconds = timed()  # nothing yet: waits for the fetch (within answer_within)
    assert (value, state) == ("v1", "ok") and seconds > 0.95
    time.sleep(1.6)  # past the TTL, well within TTL + grace
    value, state, seconds = timed()
    assert (value, state) == ("v1", "ok") and seconds < 0.8  # answered after refresh_within
    assert eventually(lambda: getattr(cache.fresh(KEY, policy), "value", None) == "v2")  # landed
    value, state, seconds = timed()  # fresh: at once
    assert (value, state) == ("v2", "ok") and seconds < 0.8

    time.sleep(policy.ttl + policy.grace + 0.05)  # past the time any refresh may take
    value, state, seconds = timed()  # not current any more: waits for the refresh, as when cold
    assert (value, state) == ("v3", "ok") and seconds > 0.95


def test_data_in_the_last_fifth_of_its_ttl_is_refreshed_ahead_without_waiting() -> None:
    """A person's own part, polled as often as it expires: each poll answers at once, and the
    data it shows is never older than its TTL (refreshed in the background before it expires).
    Times are counted from the first fetch's end, with margins a busy machine keeps (a run
    beside other work once slept past the TTL's last fifth of 0.2 s)."""
    cache = WidgetCache(LocalStore())
    policy = FetchPolicy(ttl=3.0, stale_ttl=60, upstream="u", timeout=5, refresh_within=0.05)
    slow = Slow(1.0, "v1", "v2", "v3")
    assert cache.get_or_fetch(KEY, slow, policy).value == "v1"
    fetched = time.monotonic()

    def until(seconds: float) -> None:
        time.sleep(max(0.0, fetched + seconds - time.monotonic()))

    until(1.0)
    assert cache.get_or_fetch(KEY, slow, policy).source == "hit"
    assert slow.values == ["v2", "v3"]  # 1 s old of 3: no refresh yet
    until(2.6)  # in the last fifth (2.4 s to 3 s)
    began = time.monotonic()
    ahead = cache.get_or_fetch(KEY, slow, policy)
    assert (ahead.value, ahead.source) == ("v1", "hit")
    assert time.monotonic() - began < 0.5  # the 1 s refresh runs behind it, not before it
    until(4.2)  # the refresh has landed (it took 1 s): fresh, though v1 expired at 3 s
    assert cache.get_or_fetch(KEY, slow, policy).value == "v2"
    assert slow.values == ["v3"]


def test_no_refresh_ahead_while_the_upstreams_fetch_threads_are_busy() -> None:
    """Refreshing ahead is only worth it when it delays no fetch a card waits for: with every
    fetch thread of the upstream busy (many people's own parts due at once), hits stay hits."""
    cache = WidgetCache(LocalStore(), max_waiting=1)
    policy = FetchPolicy(ttl=2.0, stale_ttl=60, upstream="u", timeout=5, answer_within=0.05)
    counted = Slow(0.0, "v1", "v2")
    assert cache.get_or_fetch(KEY, counted, seeding(policy)).value == "v1"
    fetched = time.monotonic()
    gates = [Gate() for _ in range(cache.threads_of("u"))]
    for index, gate in enumerate(gates):  # other keys of the same upstream, hanging
        cache.get_or_fetch(f"widget:other:shared:{index}", gate, replace(policy, answer_within=0))
    assert eventually(lambda: all(gate.calls == 1 for gate in gates))  # every fetch thread busy
    time.sleep(max(0.0, fetched + 1.7 - time.monotonic()))  # in the last fifth of the TTL
    assert cache.get_or_fetch(KEY, counted, policy).source == "hit"
    for gate in gates:
        gate.open.set()
    time.sleep(0.3)  # a refresh ahead queued behind them would run now
    assert counted.values == ["v2"]  # not refreshed ahead: nothing was queued
    assert eventually(lambda: cache.get_or_fetch(KEY, counted, policy).value == "v2")


def test_each_upstream_runs_as_many_fetches_at_once_as_its_fetch_threads() -> None:
    """The configured threads of one upstream bound its calls in flight; the others keep theirs."""
    cache = WidgetCache(LocalStore(), max_waiting=1, fetch_threads={"u": 2})
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="u", timeout=5, answer_within=0.01)
    other = FetchPolicy(ttl=30, stale_ttl=60, upstream="v", timeout=5, answer_within=2)
    assert (cache.threads_of("u"), cache.threads_of("v")) == (2, WidgetCache.FETCH_THREADS)
    gates = [Gate() for _ in range(5)]
    for index, gate in enumerate(gates):  # five people's own parts, all due now
        assert cache.get_or_fetch(f"widget:mine:user:{index}", gate, policy).state == "pending"
    time.sleep(0.2)
    assert [gate.calls for gate in gates] == [1, 1, 0, 0, 0]  # two in flight, the rest queued
    assert cache.get_or_fetch("widget:other:shared:x", lambda: "v", other).value == "v"  # not held
    for gate in gates:
        gate.open.set()
    assert eventually(lambda: [gate.calls for gate in gates] == [1, 1, 1, 1, 1])


def test_old_data_whose_refresh_just_began_is_pending_not_slow_when_the_request_cannot_wait() -> None:
    """Another card's request holds the only waiting place: this one answers at once, without
    calling the upstream slow (its refresh has only just begun), and asks again soon."""
    cache = WidgetCache(LocalStore(), max_waiting=1)
    policy = FetchPolicy(ttl=0.05, stale_ttl=60, upstream="u", upstream_label="Upstream", timeout=0.1)
    assert cache.get_or_fetch(KEY, lambda: "v1", policy).value == "v1"
    time.sleep(policy.ttl + policy.grace + 0.05)  # older than any refresh may take
    other = Gate()
    waiting = threading.Thread(target=cache.get_or_fetch, args=("widget:other:shared:x", other, policy))
    waiting.start()
    assert eventually(lambda: other.calls == 1)  # that request now waits for its fetch
    gate = Gate("v2")
    result = cache.get_or_fetch(KEY, gate, policy)
    assert (result.state, result.value, result.error) == ("pending", "v1", None)
    gate.open.set()
    other.open.set()
    waiting.join(5)
    assert eventually(lambda: cache.get_or_fetch(KEY, gate, policy).value == "v2")


def test_a_cold_hang_holds_at_most_max_waiting_threads_and_never_past_answer_within() -> None:
    cache = WidgetCache(LocalStore(), max_waiting=2)
    # answer_within of 1 s against "at once": plain apart on a loaded machine too.
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="u", timeout=10, answer_within=1.0)
    gate = Gate()
    barrier = threading.Barrier(16)

    def one() -> tuple[str, float]:
        barrier.wait()
        began = time.monotonic()
        result = cache.get_or_fetch(KEY, gate, policy)
        return result.state, time.monotonic() - began

    with ThreadPoolExecutor(16) as pool:
        first_wave = list(pool.map(lambda _: one(), range(16)))
    assert gate.calls == 1
    assert {state for state, _ in first_wave} == {"pending"}  # nothing yet: the card says loading
    waited = sorted(seconds for _, seconds in first_wave)
    assert waited[-1] < 1.0 + 0.4  # no one past the answer deadline
    assert sum(1 for s in waited if s > 0.5) <= 2  # only `max_waiting` waited at all

    began = time.monotonic()
    assert cache.get_or_fetch(KEY, gate, policy).state == "pending"
    assert time.monotonic() - began < 0.5  # the fetch is late already: nobody waits for it
    gate.open.set()
    assert eventually(lambda: cache.get_or_fetch(KEY, gate, policy).state == "ok")
    assert gate.calls == 1


# --- invalidation ------------------------------------------------------------------------------


def test_invalidate_drops_a_key_and_the_next_read_fetches_anew() -> None:
    cache = WidgetCache(LocalStore())
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="taiga")
    assert cache.get_or_fetch("widget:tasks:shared:open", lambda: "before", policy).value == "before"
    cache.get_or_fetch("widget:deadlines:shared:open", lambda: "other widget", policy)
    cache.invalidate("widget:tasks:")
    assert cache.get_or_fetch("widget:tasks:shared:open", lambda: "after", policy).value == "after"
    assert cache.get_or_fetch("widget:deadlines:shared:open", lambda: "x", policy).value == "other widget"
    with pytest.raises(ValueError, match="prefix"):
        cache.invalidate("widget")  # neither a key nor a prefix ending in ":"


@pytest.fixture(params=["in-process", "pod", "redis"])
def any_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CacheStore]:
    """Each kind of store the widget cache runs on: a process's own, the pod's, Redis."""
    if request.param == "redis":
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
        try:
            yield RedisStore.from_url(server.url, None, "inv:", CODEC)
        finally:
            server.stop()
    elif request.param == "pod":
        yield PodStore(tmp_path_factory.mktemp("pod"), CODEC)
    else:
        yield LocalStore()


def test_a_fetch_that_began_before_an_invalidation_never_writes_after_it(any_store: CacheStore) -> None:
    cache = WidgetCache(any_store, max_waiting=1)
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="taiga", timeout=5, answer_within=0.1)
    gate = Gate("old: read before the change")
    assert cache.get_or_fetch("widget:tasks:shared:open", gate, policy).state == "pending"
    assert eventually(lambda: gate.calls == 1)
    cache.invalidate("widget:tasks:shared:open")  # the change lands while the read is under way
    gate.open.set()
    time.sleep(0.2)  # the old read finishes and tries to store its value
    fresh = cache.get_or_fetch("widget:tasks:shared:open", lambda: "new", policy)
    assert fresh.value == "new"


def test_an_invalidated_entry_is_shown_amended_while_its_key_is_fetched_anew(any_store: CacheStore) -> None:
    """A change invalidates a key whose upstream is slow: its cards show the last data with the
    change applied (never as current: stale, "too long", when the request waited in vain), then
    stale with the reason when the new fetch fails; a second change before any fetch lands
    amends that again; the new data replaces it."""
    cache = WidgetCache(any_store, max_waiting=1, failure_hold=0.01)
    policy = FetchPolicy(
        ttl=30, stale_ttl=60, upstream="taiga", upstream_label="Taiga", timeout=5, answer_within=0.2
    )
    key = "widget:tasks:shared:board"
    assert cache.get_or_fetch(key, lambda: ("a", "b"), seeding(policy)).value == ("a", "b")
    fetched_at = cache.get_or_fetch(key, lambda: ("x",), policy).fetched_at

    cache.invalidate(key, amend=lambda board: (*board, "c"))  # the change, as Taiga answered it
    gate = Gate(("a", "b", "c", "d"))
    shown = cache.get_or_fetch(key, gate, policy)  # its refetch does not land within 0.2 s
    assert (shown.state, shown.value, shown.fetched_at) == ("stale", ("a", "b", "c"), fetched_at)
    assert str(shown.error) == "Taiga is taking too long to answer"
    cache.invalidate(key, amend=lambda board: board[1:])  # a second change meanwhile
    gate.open.set()  # the first refetch lands: it began before the second change, not kept
    assert eventually(lambda: gate.calls == 1)

    def down() -> tuple[str, ...]:
        raise UpstreamUnavailable("taiga", Reason.of("Taiga cannot be reached"), "test")

    assert eventually(lambda: cache.get_or_fetch(key, down, policy).state == "stale")
    stale = cache.get_or_fetch(key, down, policy)
    assert (stale.value, stale.fetched_at, str(stale.error)) == (
        ("b", "c"),
        fetched_at,
        "Taiga cannot be reached",
    )
    assert not stale.fetching  # failed: asked again at the card's period
    # Taiga back: the fetch runs behind the stale answer (its upstream just failed), and lands.
    assert eventually(lambda: cache.get_or_fetch(key, lambda: ("fresh",), policy).value == ("fresh",))


def test_data_set_aside_is_shown_no_longer_than_any_stale_data() -> None:
    """What an invalidation set aside is older data like any other: past the stale limit it is
    not shown (nothing, and the card says loading), nor when a later fetch was shown since."""
    cache = WidgetCache(LocalStore(), max_waiting=1)
    policy = FetchPolicy(ttl=0.1, stale_ttl=0.2, upstream="taiga", timeout=5, answer_within=0.05)
    key = "widget:tasks:shared:board"
    assert cache.get_or_fetch(key, lambda: "old", seeding(policy)).value == "old"
    cache.invalidate(key)
    time.sleep(0.35)  # past ttl + stale_ttl of the data set aside
    gate = Gate("new")
    shown = cache.get_or_fetch(key, gate, policy)
    assert (shown.state, shown.value) == ("pending", None)
    gate.open.set()


def test_a_broken_amendment_keeps_the_data_as_it_was() -> None:
    cache = WidgetCache(LocalStore(), max_waiting=1)
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="taiga", timeout=5, answer_within=0.05)
    key = "widget:tasks:shared:board"
    assert cache.get_or_fetch(key, lambda: {"a": 1}, seeding(policy)).value == {"a": 1}

    def broken(board: dict[str, int]) -> dict[str, int]:
        return {"a": board["missing"]}

    cache.invalidate(key, amend=broken)
    gate = Gate({"a": 2})
    assert cache.get_or_fetch(key, gate, policy).value == {"a": 1}
    gate.open.set()
    assert eventually(lambda: cache.get_or_fetch(key, gate, policy).value == {"a": 2})


@pytest.fixture
def two_workers(redis_server: RedisServer) -> Iterator[tuple[WidgetCache, WidgetCache, list[int]]]:
    """Two caches on one Redis, each with its own subscription: two workers (or replicas)."""
    # Entries read (and decoded) whole; of them, values an invalidation set aside; invalidations
    # the second worker has heard (over Redis: a moment after they were made).
    reads = [0, 0, 0]

    class Counting(RedisStore):
        def get(self, key: str) -> Any:
            if key.startswith("widget:"):  # an entry, not a failure record
                reads[0] += 1
            return super().get(key)

        def get_tagged(self, key: str) -> tuple[Any, bytes | None]:
            reads[0] += 1
            found = super().get_tagged(key)
            if key.startswith("aside:") and found[0] is not None:
                reads[1] += 1
            return found

    class Heard(RedisBroadcast):
        def subscribe(self, topic: str, handler: Callable[[str], None]) -> None:
            def counted(payload: str) -> None:
                handler(payload)
                reads[2] += 1

            super().subscribe(topic, counted)

    caches = []
    broadcasts = []
    for index in range(2):
        store = Counting(redis.Redis.from_url(redis_server.url), "w:", CODEC)
        broadcast = (Heard if index == 1 else RedisBroadcast)(store.client, "w:events")
        broadcasts.append(broadcast)
        caches.append(WidgetCache(store, broadcast=broadcast))
    assert all(eventually(lambda b=b: b.epoch is not None) for b in broadcasts)
    yield caches[0], caches[1], reads
    for broadcast in broadcasts:
        broadcast.close()


def test_an_entry_another_worker_wrote_is_read_once_then_kept(
    two_workers: tuple[WidgetCache, WidgetCache, list[int]],
) -> None:
    writer, reader, reads = two_workers
    writer.get_or_fetch(KEY, lambda: "page", POLICY)
    before = reads[0]
    assert all(reader.fresh(KEY, POLICY) is not None for _ in range(10))
    assert reads[0] == before + 1


def test_the_worker_that_fetched_an_entry_keeps_it_without_reading_it_back(
    two_workers: tuple[WidgetCache, WidgetCache, list[int]],
) -> None:
    """The fetching worker's next polls take the value it fetched (reading back a large entry,
    Taiga's board, cost its decode again each TTL); the store still holds that very value."""
    writer, _, reads = two_workers
    policy = FetchPolicy(ttl=0.3, stale_ttl=60, upstream="u", timeout=2, refresh_within=0.01)
    writer.get_or_fetch(KEY, lambda: "v1", policy)
    before = reads[0]
    assert all(writer.get_or_fetch(KEY, lambda: "unused", policy).value == "v1" for _ in range(5))
    time.sleep(0.35)
    assert writer.get_or_fetch(KEY, lambda: "v2", policy).value in ("v1", "v2")  # refreshed
    assert eventually(lambda: writer.fresh(KEY, policy) is not None)
    assert all(writer.get_or_fetch(KEY, lambda: "unused", policy).value == "v2" for _ in range(5))
    assert reads[0] - before <= 1  # the refresh's own look at the store before fetching


def test_an_expired_entry_is_not_read_whole_again_while_the_store_holds_the_same(
    two_workers: tuple[WidgetCache, WidgetCache, list[int]],
) -> None:
    """While a refresh hangs (or fails), every poll finds the entry past its TTL: the worker's
    kept copy is used as long as the store's tag says it holds that very value; a value another
    worker writes is read."""
    writer, reader, reads = two_workers
    policy = FetchPolicy(ttl=0.3, stale_ttl=60, upstream="u", timeout=2, refresh_within=0.01)
    writer.get_or_fetch(KEY, lambda: "page", policy)
    assert reader.get_or_fetch(KEY, lambda: "unused", policy).value == "page"
    time.sleep(0.35)  # past the TTL; the reader's refresh hangs
    gate = Gate("page 2")
    before = reads[0]
    during = [reader.get_or_fetch(KEY, gate, policy) for _ in range(20)]
    assert all(r.value == "page" and r.state == "ok" for r in during)  # within TTL + grace
    assert reads[0] - before <= 1  # the refresh's own look at the store, not one per poll
    # Another worker's refresh lands (its own fetch would wait for the reader's lock on the key).
    writer.store.set(KEY, Entry("page 3", "another", time.time()), 60)
    assert reader.get_or_fetch(KEY, gate, policy).value == "page 3"
    assert reads[0] - before <= 2
    gate.open.set()


def test_threads_asking_at_once_for_a_refreshed_entry_read_and_decode_it_once(
    redis_server: RedisServer,
) -> None:
    """A large entry (Taiga's board) takes tens of ms to decode: the worker's threads that ask
    for it at once wait for the one reading it, instead of each decoding it (a stall of every
    poll of the worker, each time the entry was refreshed)."""
    reads = [0]

    class Slow(RedisStore):
        def get_tagged(self, key: str) -> tuple[Any, bytes | None]:
            reads[0] += 1
            time.sleep(0.05)  # a large value's decoding
            return super().get_tagged(key)

    writer = WidgetCache(RedisStore(redis.Redis.from_url(redis_server.url), "s:", CODEC))
    store = Slow(redis.Redis.from_url(redis_server.url), "s:", CODEC)
    broadcast = RedisBroadcast(store.client, "s:events")
    try:
        reader = WidgetCache(store, broadcast=broadcast)
        assert eventually(lambda: broadcast.epoch is not None)
        writer.get_or_fetch(KEY, lambda: "board", POLICY)
        start = threading.Barrier(8)

        def ask() -> Any:
            start.wait()
            found = reader.fresh(KEY, POLICY)
            return found.value if found else None

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(lambda _: ask(), range(8))) == ["board"] * 8
        assert reads[0] == 1
    finally:
        broadcast.close()


def test_a_worker_waiting_for_another_workers_fetch_reads_the_entry_when_it_lands(
    two_workers: tuple[WidgetCache, WidgetCache, list[int]],
) -> None:
    """While another worker holds the key's lock, this one looks at the store's tag every
    20 ms and reads the entry only when the tag moved: not a whole read (and decode) each time."""
    first, second, reads = two_workers
    policy = FetchPolicy(ttl=0.3, stale_ttl=60, upstream="u", timeout=3, refresh_within=0.01)
    first.get_or_fetch(KEY, lambda: "v1", policy)
    time.sleep(0.35)
    gate = Gate("v2")
    assert first.get_or_fetch(KEY, gate, policy).value == "v1"  # its refresh now holds the lock
    assert eventually(lambda: gate.calls == 1)
    before = reads[0]
    assert second.get_or_fetch(KEY, lambda: "unused", policy).value == "v1"
    time.sleep(0.6)  # about 30 looks at the store
    assert reads[0] - before <= 3
    gate.open.set()
    assert eventually(lambda: second.get_or_fetch(KEY, lambda: "unused", policy).value == "v2")


def test_invalidation_reaches_the_kept_copy_of_every_worker(
    two_workers: tuple[WidgetCache, WidgetCache, list[int]],
) -> None:
    writer, reader, _ = two_workers
    writer.get_or_fetch("widget:tasks:shared:open", lambda: "before", POLICY)
    assert reader.get_or_fetch("widget:tasks:shared:open", lambda: "unused", POLICY).value == "before"
    writer.invalidate("widget:tasks:")
    assert eventually(
        lambda: reader.get_or_fetch("widget:tasks:shared:open", lambda: "after", POLICY).value == "after"
    )


# --- the shared store and its loss ------------------------------------------------------------


def test_what_an_invalidation_set_aside_is_read_once_by_each_worker_however_often_polled(
    two_workers: tuple[WidgetCache, WidgetCache, list[int]],
) -> None:
    """While a key is read anew after a change, every poll of its cards shows what was set aside:
    each worker decodes it once (a board of 1,000 people takes 0.1 s of CPU to decode), and a
    second change, set aside anew, is what they show next."""
    writer, reader, reads = two_workers
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="u", timeout=5, answer_within=0.05)
    assert writer.get_or_fetch(KEY, lambda: ("page",), seeding(policy)).value == ("page",)
    writer.invalidate(KEY)  # no amendment: copied as stored
    # Once the reader has heard it: heard later, it forgets what it read meanwhile, rightly, and
    # reads it again (a loaded machine: two reads, once in a clean run).
    assert eventually(lambda: reads[2] == 1)
    gate = Gate(("new",))
    shown = [reader.get_or_fetch(KEY, gate, policy).value for _ in range(10)]
    assert shown == [("page",)] * 10 and reads[1] == 1
    writer.invalidate(KEY, amend=lambda page: (*page, "changed"))
    assert eventually(lambda: reads[2] == 2)
    assert eventually(lambda: reader.get_or_fetch(KEY, gate, policy).value == ("page", "changed"))
    # The reader's second, and the writer's one: the page not read anew yet, its change amended
    # what was set aside.
    assert reads[1] == 3
    gate.open.set()
    assert eventually(lambda: reader.get_or_fetch(KEY, gate, policy).value == ("new",))


def _two_deaf_workers(redis_server: RedisServer) -> tuple[WidgetCache, WidgetCache]:
    """Two caches on one Redis that never hear each other's invalidations: each is a worker the
    other's broadcast has not reached yet (it arrives a moment after the change)."""
    return tuple(  # type: ignore[return-value]
        WidgetCache(
            RedisStore(redis.Redis.from_url(redis_server.url), "d:", CODEC), broadcast=LocalBroadcast()
        )
        for _ in range(2)
    )


def test_a_change_made_before_a_worker_heard_the_one_before_keeps_both(redis_server: RedisServer) -> None:
    """Two people change tasks of one board a moment apart, in two workers: the second worker
    still holds the board from before the first change (the broadcast had not reached it). What
    the cards show while the board is read anew holds both changes, not the second alone."""
    first, second = _two_deaf_workers(redis_server)
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="u", timeout=5, answer_within=0.05)
    assert first.get_or_fetch(KEY, lambda: ("board",), seeding(policy)).value == ("board",)
    assert second.get_or_fetch(KEY, lambda: ("other",), policy).value == ("board",)  # kept by both
    first.invalidate(KEY, amend=lambda board: (*board, "alice's change"))
    second.invalidate(KEY, amend=lambda board: (*board, "bob's change"))
    gate = Gate(("read anew",))
    for worker in (first, second):
        shown = worker.get_or_fetch(KEY, gate, policy)
        assert (shown.state, shown.value) == ("stale", ("board", "alice's change", "bob's change"))
    gate.open.set()


def test_changes_amending_one_board_at_the_same_moment_all_show(redis_server: RedisServer) -> None:
    """Four changes at once, two in each of two workers, each amendment taking a while (a
    board of 1,000 people takes 0.1 s to encode): each starts from what the one before set
    aside, so none is lost from what the cards show."""
    workers = _two_deaf_workers(redis_server)
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="u", timeout=5, answer_within=0.05)
    assert workers[0].get_or_fetch(KEY, lambda: (), seeding(policy)).value == ()
    assert workers[1].get_or_fetch(KEY, lambda: ("other",), policy).value == ()

    def change(worker: WidgetCache, name: str) -> None:
        def amend(board: tuple[str, ...]) -> tuple[str, ...]:
            time.sleep(0.1)
            return (*board, name)

        worker.invalidate(KEY, amend=amend)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(change, [workers[0], workers[1], workers[0], workers[1]], ["a", "b", "c", "d"]))
    gate = Gate(("read anew",))
    shown = workers[0].get_or_fetch(KEY, gate, policy)
    assert shown.state == "stale" and sorted(shown.value) == ["a", "b", "c", "d"]
    gate.open.set()


def test_a_change_to_one_board_does_not_wait_for_a_change_to_another() -> None:
    """Two people change tasks of two boards at once in one worker: while the first change's
    amendment takes its time (a board of 1,000 people, or another replica's change to the same
    board ahead of it), the second is set aside and answered without waiting for it."""
    cache = WidgetCache(LocalStore(), max_waiting=1)
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="taiga", timeout=5, answer_within=0.05)
    first = "widget:tasks:shared:board-1"
    second = next(
        key
        for key in (f"widget:tasks:shared:board-{n}" for n in range(2, 200))
        if cache.amending_lock(key) is not cache.amending_lock(first)
    )
    for key in (first, second):
        assert cache.get_or_fetch(key, lambda: ("task",), seeding(policy)).value == ("task",)
    amending, release = threading.Event(), threading.Event()

    def slow(board: tuple[str, ...]) -> tuple[str, ...]:
        amending.set()
        release.wait(10)
        return (*board, "first change")

    slow_change = threading.Thread(target=cache.invalidate, args=(first,), kwargs={"amend": slow})
    slow_change.start()
    assert amending.wait(5)
    quick_change = threading.Thread(
        target=cache.invalidate, args=(second,), kwargs={"amend": lambda board: (*board, "second change")}
    )
    quick_change.start()
    quick_change.join(5)
    done_first = not quick_change.is_alive()
    release.set()
    slow_change.join(5)
    assert done_first  # the second change did not wait for the first to be amended
    gate = Gate(("read anew",))
    assert cache.get_or_fetch(second, gate, policy).value == ("task", "second change")
    assert cache.get_or_fetch(first, gate, policy).value == ("task", "first change")
    gate.open.set()


def test_redis_stopped_mid_test_falls_back_without_errors(
    kuma: SimServer, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[bool] = []

    class Recorder(CacheObserver):
        def backend_fallback(self, active: bool) -> None:
            events.append(active)

    recorder = Recorder()
    store = FallbackStore(
        RedisStore.from_url(redis_server.url, None, "t2:", CODEC), LocalStore(), recorder, retry_after=0.3
    )
    cache = WidgetCache(store, observer=recorder)
    fetch = _fetcher(kuma)
    assert cache.get_or_fetch(KEY, fetch, POLICY).state == "ok"
    assert store.shared

    redis_server.stop()
    # A key this worker does not hold a copy of (of KEY it keeps what it fetched).
    result = cache.get_or_fetch("widget:status:shared:after", fetch, POLICY)
    assert result.state == "ok"  # fetched into the in-process store
    assert store.degraded and not store.shared
    assert events == [True]
    assert "shared store unreachable" in caplog.text

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
        log_file = next(p for p in tmp_path.iterdir() if p.suffix == ".log")
        assert "shared store unreachable" in log_file.read_text()
        redis_server.start()

        def back() -> bool:  # the fallback rechecks Redis every 5 s, in whichever worker is asked
            assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
            return "shared store is back" in log_file.read_text()

        assert eventually(back, seconds=15)
    assert all(status < 500 for status in statuses), statuses
    assert set(statuses) == {200}


def test_an_unreadable_entry_is_a_miss(kuma: SimServer, redis_server: RedisServer) -> None:
    store = RedisStore.from_url(redis_server.url, None, "t3:", CODEC)
    raw = redis.Redis.from_url(redis_server.url)
    raw.set(f"t3:{KEY}", b"!not a pickle at all")
    cache = WidgetCache(store)
    result = cache.get_or_fetch(KEY, _fetcher(kuma), POLICY)
    assert result.state == "ok"
    assert result.source == "miss"


def test_a_reason_renders_in_both_languages(app: Flask) -> None:
    reason = Reason.of("%(upstream)s did not answer within %(seconds)s s", upstream="Taiga", seconds="4")
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        from portal.web.i18n import translate_reason

        assert translate_reason(reason) == "Taiga n’a pas répondu en moins de 4\u00a0s"
    assert str(reason) == "Taiga did not answer within 4 s"
    assert isinstance(UpstreamUnavailable("Taiga", reason).message, str)


def test_memo_forgets_the_least_recently_used() -> None:
    memo: Memo[str, int] = Memo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1
    memo.put("c", 3)
    assert memo.get("b") is None and memo.get("a") == 1 and memo.get("c") == 3


def test_a_weighed_memo_keeps_its_entries_within_its_weight() -> None:
    memo: Memo[str, str] = Memo(100, max_weight=10, weigh=len)
    memo.put("a", "aaaa")
    memo.put("b", "bbbb")
    assert memo.weight == 8
    memo.put("c", "cccc")  # 12 > 10: the least recently used goes
    assert memo.get("a") is None and memo.get("b") == "bbbb" and memo.weight == 8
    memo.put("b", "bb")  # replaced: its old weight is given back
    assert memo.weight == 6
    memo.put("big", "x" * 50)  # heavier than the whole budget: kept alone (the latest is served)
    assert len(memo) == 1 and memo.get("big") and memo.weight == 50
    memo.pop("big")
    memo.pop_where(lambda key: True)
    assert len(memo) == 0 and memo.weight == 0


def test_a_fingerprint_is_the_same_in_every_worker_and_moves_with_the_data() -> None:
    """Equal values hash alike whatever each process's hash seed does to a set's order (two
    workers must give a card the same version); different values do not."""
    script = (
        "from portal.caching.widget_cache import fingerprint;"
        "from portal.widgets.pipelines.client import MergeRequest;"
        "names = frozenset(f'user{n}' for n in range(50));"
        "request = MergeRequest(1, 1, 1, 'r', 't', False, None, None, None, 's', names);"
        "print(fingerprint([request, {2: 'b', 1: 'a'}]))"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(seen) == 1
    assert fingerprint({"a": (1, 2)}) != fingerprint({"a": (1, 3)})
    assert fingerprint(2**70) != fingerprint(2**70 + 1)  # beyond what orjson writes: still a hash
