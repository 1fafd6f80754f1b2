"""The widget cache: `get_or_fetch` with TTL, single-flight, a stale window and circuit breakers.

Every widget goes through `WidgetCache.get_or_fetch(key, fetch, policy)`:

- a fresh entry is returned at once (the hot path: one store read, nothing else);
- on a miss, one caller per key fetches (a thread lock within a process, a Redis lock across
  processes); the others wait for its result, or keep showing the previous data meanwhile;
- a failure is never stored as data: the last good entry is served as stale with the reason,
  the failure is remembered for `failure_hold` seconds so that pollers do not hammer the
  upstream, and the upstream's circuit breaker opens after repeated failures;
- Redis going away falls back to an in-process store with a warning, never a 5xx.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import quote

import redis
from flask_caching.backends.rediscache import RedisCache
from flask_caching.backends.simplecache import SimpleCache

from ..upstreams.breaker import BreakerPolicy, CircuitBreaker, CircuitState
from ..upstreams.http import N_, Reason, UpstreamError
from .memo import Memo

log = logging.getLogger(__name__)

T = TypeVar("T")
Source = Literal["hit", "miss", "coalesced", "stale", "error"]


@functools.lru_cache(maxsize=8192)  # asked on every poll, for a few keys per user
def widget_key(slug: str, scope: str, *args: str) -> str:
    """`widget:<slug>:<scope>:<args>`; scope is "shared" or "user:<subject>"."""
    parts = [quote(part, safe="") for part in args]
    return ":".join(["widget", slug, scope, *parts])


@functools.lru_cache(maxsize=4096)
def user_scope(subject: str) -> str:
    """The scope of a per-user key; the subject is quoted so it cannot forge another key."""
    return "user:" + quote(subject, safe="")


def fingerprint(value: Any) -> str:
    """A stable hash of a typed result (dataclasses, lists, dicts, scalars)."""

    def default(obj: Any) -> Any:
        if is_dataclass(obj) and not isinstance(obj, type):
            return asdict(obj)
        if isinstance(obj, set | frozenset):
            return sorted(obj, key=repr)
        return str(obj)

    data = json.dumps(value, default=default, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(data.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True)
class Entry:
    """A good result as stored: the value, its fingerprint, and when it was fetched (epoch s)."""

    value: Any
    fingerprint: str
    fetched_at: float


@dataclass(frozen=True)
class Failure:
    """The outcome of a failed fetch, shared for a short while (never served as data)."""

    reason: Reason
    at: float


@dataclass(frozen=True)
class CacheResult(Generic[T]):
    """What a widget gets back: data (maybe stale) and/or the reason fresh data is missing."""

    value: T | None
    fingerprint: str | None
    fetched_at: float | None
    source: Source
    error: Reason | None = None

    @property
    def state(self) -> Literal["ok", "stale", "error"]:
        """ok: fresh data; stale: last good data and a reason; error: only a reason."""
        if self.error is None:
            return "ok"
        return "stale" if self.value is not None else "error"


@dataclass(frozen=True)
class FetchPolicy:
    """How one widget caches: freshness, stale window, the upstream it calls and wait bound."""

    ttl: float
    stale_ttl: float
    upstream: str  # the breaker's key: one circuit per upstream
    wait_timeout: float = 6.0
    upstream_label: str = ""  # the upstream's name in messages ("Uptime Kuma")

    @property
    def too_slow(self) -> Reason:
        return Reason.of(
            N_("%(upstream)s is taking too long to answer"),
            upstream=self.upstream_label or self.upstream,
        )


class CacheObserver:
    """Receives cache and upstream events; the metrics module overrides these no-ops."""

    def result(self, widget: str, source: Source) -> None:
        """A get_or_fetch call finished with this outcome."""

    def upstream_call(self, upstream: str, outcome: str, seconds: float) -> None:
        """An upstream call finished (outcome "ok" or an UpstreamError outcome)."""

    def breaker_state(self, upstream: str, state: CircuitState) -> None:
        """An upstream's circuit changed state."""

    def backend_fallback(self, active: bool) -> None:
        """The shared store became unreachable (True) or came back (False)."""


# --- stores -------------------------------------------------------------------------------


class Lock(Protocol):
    def release(self) -> None: ...


class _NoLock:
    """Within one process the per-key flight already serialises fetches."""

    def release(self) -> None:
        return None


class Store(Protocol):
    """Where entries live; `try_lock` returns None when another process holds the key."""

    @property
    def shared(self) -> bool:
        """True when other processes see the same entries."""
        ...

    def get(self, key: str) -> Any: ...
    def set(self, key: str, value: Any, timeout: float) -> None: ...
    def delete(self, key: str) -> None: ...
    def try_lock(self, key: str, ttl: float) -> Lock | None: ...
    def ping(self) -> bool: ...


class LocalStore:
    """flask-caching's SimpleCache, guarded by a lock (its pruning iterates the dict)."""

    shared = False

    def __init__(self, max_entries: int = 5000) -> None:
        self._cache = SimpleCache(threshold=max_entries, default_timeout=0)  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            return self._cache.get(key)

    def set(self, key: str, value: Any, timeout: float) -> None:
        with self._lock:
            self._cache.set(key, value, timeout=max(1, int(timeout + 0.999)))

    def delete(self, key: str) -> None:
        with self._lock:
            self._cache.delete(key)

    def try_lock(self, key: str, ttl: float) -> Lock | None:
        return _NoLock()

    def ping(self) -> bool:
        return True


class RedisStore:
    """flask-caching's RedisCache on a client with short timeouts, plus Redis locks."""

    shared = True

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.key_prefix = key_prefix
        self._cache = RedisCache(host=client, key_prefix=key_prefix, default_timeout=0)  # type: ignore[no-untyped-call]

    @classmethod
    def from_url(cls, url: str, password: str | None, key_prefix: str) -> RedisStore:
        """Connect lazily; every operation is bounded so a dead Redis cannot hang a request."""
        client = redis.Redis.from_url(
            url,
            password=password,
            socket_connect_timeout=0.3,
            socket_timeout=0.5,
            health_check_interval=30,
        )
        return cls(client, key_prefix)

    def get(self, key: str) -> Any:
        return self._cache.get(key)

    def set(self, key: str, value: Any, timeout: float) -> None:
        self._cache.set(key, value, timeout=max(1, int(timeout + 0.999)))

    def delete(self, key: str) -> None:
        self._cache.delete(key)

    def try_lock(self, key: str, ttl: float) -> Lock | None:
        lock = self.client.lock(f"{self.key_prefix}lock:{key}", timeout=ttl, blocking=False)
        return lock if lock.acquire(blocking=False) else None

    def ping(self) -> bool:
        return bool(self.client.ping())


class FallbackStore:
    """Redis first; while Redis is unreachable, an in-process store (rechecked every few s)."""

    def __init__(
        self,
        primary: Store,
        fallback: Store,
        observer: CacheObserver,
        retry_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.observer = observer
        self.retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    @property
    def shared(self) -> bool:
        return not self.degraded

    @property
    def degraded(self) -> bool:
        """True while the in-process fallback is in use."""
        return self._down

    def _active(self) -> Store:
        if self._down and self._clock() < self._down_until:
            return self.fallback
        return self.primary

    def _call(self, operation: str, *args: Any) -> Any:
        store = self._active()
        if store is self.fallback:
            return getattr(store, operation)(*args)
        try:
            result = getattr(store, operation)(*args)
        except redis.RedisError as exc:
            self._mark_down(exc)
            return getattr(self.fallback, operation)(*args)
        if self._down:
            self._mark_up()
        return result

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            self._down_until = self._clock() + self.retry_after
            if self._down:
                return
            self._down = True
        log.warning(
            "shared cache unreachable, using the in-process cache",
            extra={"event": "cache_fallback", "error": type(exc).__name__},
        )
        self.observer.backend_fallback(True)

    def _mark_up(self) -> None:
        with self._lock:
            if not self._down:
                return
            self._down = False
        log.warning("shared cache is back", extra={"event": "cache_recovered"})
        self.observer.backend_fallback(False)

    def get(self, key: str) -> Any:
        return self._call("get", key)

    def set(self, key: str, value: Any, timeout: float) -> None:
        self._call("set", key, value, timeout)

    def delete(self, key: str) -> None:
        self._call("delete", key)

    def try_lock(self, key: str, ttl: float) -> Lock | None:
        lock = self._call("try_lock", key, ttl)
        return None if lock is None else _SafeLock(lock)

    def ping(self) -> bool:
        try:
            ok = self.primary.ping()
        except redis.RedisError as exc:
            self._mark_down(exc)
            return False
        if ok and self._down:
            self._mark_up()
        return ok


class _SafeLock:
    """Releasing a Redis lock must not fail a request when Redis went away meanwhile."""

    def __init__(self, lock: Lock) -> None:
        self._lock = lock

    def release(self) -> None:
        try:
            self._lock.release()
        except redis.RedisError:
            pass  # the lock expires on its own (its TTL)
        except Exception as exc:  # redis LockError (lost ownership) is not a RedisError
            log.debug("lock release failed: %s", exc)


# --- single-flight ---------------------------------------------------------------------------


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    result: CacheResult[Any] | None = None


class WidgetCache:
    """get_or_fetch for every widget; one instance per process."""

    POLL_INTERVAL = 0.02
    HOT_ENTRIES = 2000

    def __init__(
        self,
        store: Store,
        breaker_policies: dict[str, BreakerPolicy] | None = None,
        failure_hold: float = 5.0,
        observer: CacheObserver | None = None,
    ) -> None:
        self.store = store
        # Fresh entries already read, kept in the worker until their TTL ends: a hit then costs
        # no store round trip (nor unpickling). Exact, not a second staleness: an entry is only
        # replaced in the store once it is no longer fresh.
        # Each kept as the hit it answers (immutable, so shared by every caller).
        self._hot: Memo[str, CacheResult[Any]] = Memo(self.HOT_ENTRIES)
        self.failure_hold = failure_hold
        self.observer = observer or CacheObserver()
        self._policies = breaker_policies or {}
        self._breakers: dict[str, CircuitBreaker] = {}
        self._flights: dict[str, _Flight] = {}
        self._flights_lock = threading.Lock()

    def breaker(self, upstream: str) -> CircuitBreaker:
        """The circuit breaker of one upstream (created on first use)."""
        found = self._breakers.get(upstream)
        if found is None:
            with self._flights_lock:
                found = self._breakers.setdefault(
                    upstream,
                    CircuitBreaker(
                        upstream,
                        self._policies.get(upstream, BreakerPolicy()),
                        on_change=self.observer.breaker_state,
                    ),
                )
        return found

    def get_or_fetch(
        self, key: str, fetch: Callable[[], T], policy: FetchPolicy, widget: str = ""
    ) -> CacheResult[T]:
        """Return the cached value for `key`, fetching it (once for all callers) when needed."""
        result = self._get_or_fetch(key, fetch, policy)
        self.observer.result(widget or key.split(":", 2)[1], result.source)
        return result

    def fresh(self, key: str, policy: FetchPolicy, widget: str = "") -> CacheResult[Any] | None:
        """The cached result if it is fresh, else None (at most one store read, no upstream call)."""
        hit = self._hot.get(key)
        if hit is None or hit.fetched_at is None or time.time() - hit.fetched_at >= policy.ttl:
            hit = self._read_fresh(key, policy)
        if hit is not None:
            self.observer.result(widget or key.split(":", 2)[1], "hit")
        return hit

    def _read_fresh(self, key: str, policy: FetchPolicy) -> CacheResult[Any] | None:
        """The store's entry as a hit when fresh (then kept hot); a stale one leaves the hot set."""
        entry = self._read_entry(key)
        if entry is not None and time.time() - entry.fetched_at < policy.ttl:
            return self._keep_hot(key, entry)
        self._hot.pop(key)
        return None

    def _keep_hot(self, key: str, entry: Entry) -> CacheResult[Any]:
        hit: CacheResult[Any] = CacheResult(entry.value, entry.fingerprint, entry.fetched_at, "hit")
        self._hot.put(key, hit)
        return hit

    def _get_or_fetch(self, key: str, fetch: Callable[[], T], policy: FetchPolicy) -> CacheResult[T]:
        entry = self._read_entry(key)
        if entry is not None and time.time() - entry.fetched_at < policy.ttl:
            return self._keep_hot(key, entry)

        with self._flights_lock:
            flight = self._flights.get(key)
            leading = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()

        if not leading:
            if entry is not None:
                # Someone is refreshing it: keep showing what we have rather than waiting.
                return CacheResult(entry.value, entry.fingerprint, entry.fetched_at, "coalesced")
            if flight.done.wait(policy.wait_timeout) and flight.result is not None:
                shared = flight.result
                source: Source = "coalesced" if shared.error is None else shared.source
                return CacheResult(shared.value, shared.fingerprint, shared.fetched_at, source, shared.error)
            return self._degraded(entry, policy.too_slow)

        try:
            result = self._lead(key, entry, fetch, policy)
        except BaseException:
            self._land(key, flight, None)  # followers stop waiting; they report "too slow"
            raise
        self._land(key, flight, result)
        return result

    def _land(self, key: str, flight: _Flight, result: CacheResult[Any] | None) -> None:
        """Hand the leader's result to the followers and forget the flight."""
        flight.result = result
        flight.done.set()
        with self._flights_lock:
            self._flights.pop(key, None)

    def _lead(
        self, key: str, entry: Entry | None, fetch: Callable[[], T], policy: FetchPolicy
    ) -> CacheResult[T]:
        """The one caller per process that may fetch; coordinates with other processes."""
        failure = self._read_failure(key)
        if failure is not None and (entry is None or failure.at > entry.fetched_at):
            return self._degraded(entry, failure.reason)
        breaker = self.breaker(policy.upstream)
        if breaker.state is CircuitState.OPEN:
            return self._degraded(entry, self._open_message(breaker, policy))

        started = time.monotonic()
        while True:
            lock = self.store.try_lock(key, ttl=policy.wait_timeout + 2)
            if lock is not None:
                try:
                    return self._fetch_locked(key, entry, fetch, policy, breaker)
                finally:
                    lock.release()
            if entry is not None:
                # Another process is refreshing this key: show the previous data meanwhile.
                return CacheResult(entry.value, entry.fingerprint, entry.fetched_at, "coalesced")
            time.sleep(self.POLL_INTERVAL)
            other = self._read_entry(key)
            if other is not None:
                return CacheResult(other.value, other.fingerprint, other.fetched_at, "coalesced")
            failure = self._read_failure(key)
            if failure is not None:
                return self._degraded(None, failure.reason)
            if time.monotonic() - started > policy.wait_timeout:
                return self._degraded(None, policy.too_slow)

    def _fetch_locked(
        self,
        key: str,
        entry: Entry | None,
        fetch: Callable[[], T],
        policy: FetchPolicy,
        breaker: CircuitBreaker,
    ) -> CacheResult[T]:
        if self.store.shared:
            # Another process may have refreshed the key while we waited for the lock.
            latest = self._read_entry(key)
            if latest is not None and time.time() - latest.fetched_at < policy.ttl:
                return CacheResult(latest.value, latest.fingerprint, latest.fetched_at, "coalesced")
        if not breaker.allow():
            return self._degraded(entry, self._open_message(breaker, policy))
        began = time.monotonic()
        try:
            value = fetch()
        except UpstreamError as exc:
            elapsed = time.monotonic() - began
            breaker.record_failure(exc.reason)
            self.observer.upstream_call(policy.upstream, exc.outcome, elapsed)
            log.warning(
                "upstream call failed",
                extra={
                    "event": "upstream_error",
                    "upstream": policy.upstream,
                    "outcome": exc.outcome,
                    "error": exc.message,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
            self._write(self._failure_key(key), Failure(exc.reason, time.time()), self.failure_hold)
            return self._degraded(entry, exc.reason)
        self.observer.upstream_call(policy.upstream, "ok", time.monotonic() - began)
        breaker.record_success()
        fresh = Entry(value, fingerprint(value), time.time())
        self._write(key, fresh, policy.ttl + policy.stale_ttl)
        self._keep_hot(key, fresh)
        self._delete(self._failure_key(key))
        return CacheResult(fresh.value, fresh.fingerprint, fresh.fetched_at, "miss")

    @staticmethod
    def _open_message(breaker: CircuitBreaker, policy: FetchPolicy) -> Reason:
        """While the circuit is open, the card says what the last failure was."""
        last = breaker.last_error
        if isinstance(last, Reason):
            return last
        return Reason.of(N_("%(upstream)s is failing"), upstream=policy.upstream_label or policy.upstream)

    @staticmethod
    def _degraded(entry: Entry | None, reason: Reason) -> CacheResult[Any]:
        if entry is None:
            return CacheResult(None, None, None, "error", reason)
        return CacheResult(entry.value, entry.fingerprint, entry.fetched_at, "stale", reason)

    # --- store access: a broken entry is a miss, never an exception ---------------------

    @staticmethod
    def _failure_key(key: str) -> str:
        return f"failure:{key}"

    def _read_entry(self, key: str) -> Entry | None:
        value = self._safe_get(key)
        return value if isinstance(value, Entry) else None

    def _read_failure(self, key: str) -> Failure | None:
        """A failure still within its hold (stores expire in whole seconds; this is exact)."""
        value = self._safe_get(self._failure_key(key))
        if isinstance(value, Failure) and time.time() - value.at < self.failure_hold:
            return value
        return None

    def _safe_get(self, key: str) -> Any:
        try:
            return self.store.get(key)
        except Exception as exc:  # an undecodable value (another version's pickle) is a miss
            log.warning("cache entry unreadable", extra={"event": "cache_unreadable", "error": str(exc)})
            return None

    def _write(self, key: str, value: Any, timeout: float) -> None:
        self.store.set(key, value, timeout)

    def _delete(self, key: str) -> None:
        self.store.delete(key)
