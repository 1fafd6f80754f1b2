"""The widget cache: single-flight fetches in the background, honest freshness, invalidation.

Every widget part goes through `WidgetCache.get_many([...])` (or `get_or_fetch` for one key):

- a fresh entry is returned at once (the hot path: one read of the worker's kept copy or of the
  store, nothing else); in the last fifth of its TTL it is also refreshed in the background, so
  that data polled as often as it expires is not found expired at every other poll;
- on a miss, one fetch per key runs in a thread of the upstream's own pool (one per process,
  coordinated across processes by a lock in the store). Requests wait for it until
  `answer_within` seconds after it started (only `refresh_within` when the data they have is
  still current), and only `max_waiting` of them at a time; the others, and any request after
  that, answer at once with what there is. So a hung upstream holds fetch threads, never the
  request threads the shell and the other cards need, and a slow one never slows every poll;
- what there is, while a fetch runs: data younger than `ttl + grace` (the time a refresh may
  take) is shown as current; older data is shown as stale with the reason, unless its refresh
  began less than `answer_within` ago (this request could not wait for it: the data is shown,
  "pending", and the card polls again soon); no data at all is "pending" (the card says
  loading and polls again soon), or the last failure when one is known;
- a failure is never stored as data: the last good entry is served as stale with the reason,
  no new try is made for `failure_hold` seconds so that pollers do not hammer the upstream, and
  until a refresh succeeds no request waits for one (in any worker: the failure is recorded in
  the store), since it will most likely fail too; the upstream's circuit breaker opens after
  repeated failures (or at once, for as long as a 429 asks); a request the upstream refused as
  invalid (`UpstreamRejected`, a 400 or 422: a bad query) fails its own key only and leaves the
  circuit closed;
- `invalidate(key or prefix)` drops entries, failure records, every worker's kept copies and
  the flights under way (through the broadcast), and a fetch that began before it can never
  write its older value after it (the store's guarded write). An invalidated key's last entry
  is kept aside (`Superseded`, amended by the change that invalidated it when the change says
  how): never current, it is what the card shows while the key is fetched anew — "pending",
  then stale if that fetch fails or is too slow — rather than nothing (a change made while its
  upstream is slow would otherwise leave the card empty until the upstream is fast again);
- Redis going away falls back to an in-process store with a warning, never a 5xx.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

import orjson

from ..upstreams.breaker import BreakerPolicy, CircuitBreaker, CircuitState
from ..upstreams.errors import N_, Reason, UpstreamError, UpstreamRejected
from ..upstreams.http import Quota
from .broadcast import Broadcast, KeptRecords, LocalBroadcast
from .stores import CacheStore, Lock

log = logging.getLogger(__name__)

T = TypeVar("T")
Source = Literal["hit", "miss", "coalesced", "stale", "error", "pending"]

TOPIC = "cache"  # what the broadcast says when keys were invalidated
SEQUENCE_KEY = "inval:seq"  # counts invalidations; a fetch notes it before it starts
MARK_TTL = 600  # seconds an invalidation mark is kept: longer than any fetch may run
READ_STRIPES = 64  # locks a worker's reads of the shared store are spread over, by key
ASIDE_WAIT = 2.0  # s a change waits for another change's amendment of the same key to end
# A hit in the last fifth of its TTL starts the refresh in the background (and answers at once),
# when one of the upstream's fetch threads is free for it.
# A card polled as often as its data expires (a person's own parts: TTL = refresh) would
# otherwise find its data expired at every other poll, older than the time a refresh may take,
# and wait for the upstream; data many people poll is refreshed before anyone finds it expired.
REFRESH_AHEAD = 0.2


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
    """A stable hash of a typed result (dataclasses, lists, dicts, scalars): equal values give
    equal hashes in every worker. Sets are sorted: their order follows each process's hash seed.

    orjson writes dataclasses, dates and enums itself, in C: Taiga's board for 1,000 people took
    230 ms of CPU through `json.dumps` and `asdict`, a stall of every poll of the worker that
    fetched it, every TTL.
    """
    try:
        options = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        data = orjson.dumps(value, default=_sorted_sets, option=options)
    except orjson.JSONEncodeError:  # what orjson will not write (an integer beyond 64 bits): slower
        data = json.dumps(value, default=_as_data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def _sorted_sets(obj: Any) -> Any:
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    return str(obj)


def _as_data(obj: Any) -> Any:
    if is_dataclass(obj) and not isinstance(obj, type):
        return asdict(obj)
    return _sorted_sets(obj)


def _mark_key(target: str) -> str:
    return f"inval:{target}"


def _aside_key(key: str) -> str:
    """Where an invalidated key's last entry is kept while the key is fetched anew."""
    return f"aside:{key}"


def _marks_of(key: str) -> list[str]:
    """The invalidation marks that cover `key`: the key itself and each prefix ending in ":"."""
    marks = [_mark_key(key)]
    index = key.find(":")
    while index != -1:
        marks.append(_mark_key(key[: index + 1]))
        index = key.find(":", index + 1)
    return marks


@dataclass(frozen=True)
class Entry:
    """A good result as stored: the value, its fingerprint, and when it was fetched (epoch s)."""

    value: Any
    fingerprint: str
    fetched_at: float


@dataclass(frozen=True)
class Superseded(Entry):
    """The last entry of a key that was invalidated (maybe amended by the change): shown while
    the key is fetched anew, never as current. Built when read, never stored as such."""


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
    # Stale only because the fetch under way is late (it may still land): the card asks again soon.
    fetching: bool = False

    @property
    def state(self) -> Literal["ok", "stale", "error", "pending"]:
        """ok: fresh data; stale: last good data and a reason; error: only a reason; pending:
        nothing yet, or older data while its refresh has only just begun (ask again soon)."""
        if self.error is None:
            return "pending" if self.value is None or self.source == "pending" else "ok"
        return "stale" if self.value is not None else "error"

    @classmethod
    def of(cls, entry: Entry, source: Source, error: Reason | None = None) -> CacheResult[Any]:
        return CacheResult(entry.value, entry.fingerprint, entry.fetched_at, source, error)


@dataclass(frozen=True)
class FetchPolicy:
    """How one widget part caches and the upstream it calls."""

    ttl: float
    stale_ttl: float
    upstream: str  # the breaker's key and the metrics label: one circuit per upstream
    upstream_label: str = ""  # the upstream's name in messages ("Uptime Kuma")
    timeout: float = 5.0  # the upstream's budget for one fetch
    answer_within: float = 2.0  # how long a request with nothing current to show waits for a fetch
    refresh_within: float = 0.15  # how long a request with current data waits for its refresh

    @property
    def grace(self) -> float:
        """How long past its TTL data still counts as current while a refresh is under way."""
        return self.timeout + 1.0

    def current(self, entry: Entry | None, now: float) -> bool:
        """Whether `entry` may still be shown as current while its refresh is under way (an
        invalidated one never is)."""
        return (
            entry is not None
            and not isinstance(entry, Superseded)
            and now - entry.fetched_at < self.ttl + self.grace
        )

    @property
    def wait_timeout(self) -> float:
        """How long a fetch waits for another process that holds the key's lock."""
        return self.timeout + 1.0

    @property
    def label(self) -> str:
        return self.upstream_label or self.upstream

    @property
    def too_slow(self) -> Reason:
        return Reason.of(N_("%(upstream)s is taking too long to answer"), upstream=self.label)


@dataclass(frozen=True)
class Request(Generic[T]):
    """One key a card needs: where it is cached, how to fetch it, under which policy."""

    key: str
    fetch: Callable[[], T]
    policy: FetchPolicy
    widget: str


class CacheObserver:
    """Receives cache and upstream events; the metrics module overrides these no-ops."""

    def result(self, widget: str, source: Source) -> None:
        """A request for one key finished with this outcome."""

    def upstream_call(self, upstream: str, outcome: str, seconds: float) -> None:
        """An upstream call finished (outcome "ok" or an UpstreamError outcome)."""

    def breaker_state(self, upstream: str, state: CircuitState) -> None:
        """An upstream's circuit changed state."""

    def upstream_quota(self, upstream: str, quota: Quota) -> None:
        """An upstream's answer said how much of its rate limit is left."""

    def backend_fallback(self, active: bool) -> None:
        """The shared store became unreachable (True) or came back (False)."""

    def database_reachable(self, reachable: bool) -> None:
        """The portal's own database answered (True) or not (False) a readiness probe's ping."""

    def card_failed(self, widget: str) -> None:
        """A card could not be drawn (a bug in its code or template): its poll answers 500, and
        the page, drawn all the same, answers 200."""


@dataclass(frozen=True)
class _Kept:
    """An entry a worker read from the shared store, and the store's tag of it."""

    entry: Entry
    tag: bytes | None


@dataclass
class _Flight:
    """One fetch under way in this process, and its outcome once it lands."""

    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: CacheResult[Any] | None = None


class WidgetCache:
    """get_many / get_or_fetch for every widget, and invalidate; one instance per process."""

    # While another process fetches a key: s between two looks at the store, at first, growing
    # with the wait up to POLL_INTERVAL_MAX (a hung upstream's keys are not read 50 times a second
    # for the whole timeout: that CPU is the other cards').
    POLL_INTERVAL = 0.02
    POLL_INTERVAL_MAX = 0.25
    FETCH_THREADS = 8  # per upstream and process, unless `fetch_threads` names the upstream

    def __init__(
        self,
        store: CacheStore,
        breaker_policies: dict[str, BreakerPolicy] | None = None,
        failure_hold: float = 5.0,
        observer: CacheObserver | None = None,
        broadcast: Broadcast | None = None,
        max_waiting: int = 2,
        fetch_threads: Mapping[str, int] | None = None,
    ) -> None:
        """`max_waiting`: how many requests of this process may wait for fetches at once (keep
        it well below the request threads, so that a hung upstream cannot hold them all).
        `fetch_threads`: how many fetches of each upstream this process runs at once (a hung
        upstream holds at most these threads; each person's own parts need one each)."""
        self.store = store
        self._waiting = threading.BoundedSemaphore(max(1, max_waiting))
        self.failure_hold = failure_hold
        self.observer = observer or CacheObserver()
        self.broadcast = broadcast or LocalBroadcast()
        self.broadcast.subscribe(TOPIC, self._forget)
        # Entries read from a shared store, kept by the worker while they are fresh and the
        # broadcast listens: a hit then costs no round trip. An in-process store needs none.
        self._kept: KeptRecords[_Kept] | None = KeptRecords(self.broadcast, 2000) if store.shared else None
        # One thread reads and decodes a refreshed entry while the others wait for it: eight
        # threads decoding Taiga's board for 1,000 people (75 ms each) at once stalled every
        # poll of the worker for half a second, each time the board was refreshed.
        self._reading = tuple(threading.Lock() for _ in range(READ_STRIPES))
        self._policies = breaker_policies or {}
        self._fetch_threads = dict(fetch_threads or {})
        self._breakers: dict[str, CircuitBreaker] = {}
        self._flights: dict[str, _Flight] = {}
        self._queued: dict[str, int] = {}  # fetches submitted and not finished, by upstream
        self._lock = threading.Lock()
        # Changes to one key amend what is set aside in turn; changes to other keys do not wait.
        self._amending = tuple(threading.Lock() for _ in range(READ_STRIPES))
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._pools_pid = 0

    # --- reading -------------------------------------------------------------------------

    def fresh(self, key: str, policy: FetchPolicy, widget: str = "") -> CacheResult[Any] | None:
        """The cached result if it is fresh, else None (at most one store read, no upstream call)."""
        entry = self._read_entry(key, policy.ttl)
        if entry is not None and time.time() - entry.fetched_at < policy.ttl:
            self.observer.result(widget or key.split(":", 2)[1], "hit")
            return CacheResult.of(entry, "hit")
        return None

    def get_or_fetch(
        self, key: str, fetch: Callable[[], T], policy: FetchPolicy, widget: str = ""
    ) -> CacheResult[T]:
        """The result for one key (see `get_many`)."""
        found: CacheResult[T] = self.get_many([Request(key, fetch, policy, widget)])[0]
        return found

    def get_many(self, requests: Sequence[Request[Any]]) -> list[CacheResult[Any]]:
        """Every request's result: fresh entries at once, misses fetched concurrently in the background.

        The request waits for the fetches under way, each until `answer_within` after it
        started, or only `refresh_within` when the data it has is still current (a refresh that
        takes longer lands for the next poll: a slow upstream does not slow every poll of a card
        whose data expires between two polls); what has not landed by then is answered from what
        there is (see the module's docstring).
        """
        self.broadcast.catch_up()  # invalidations other processes made, when nothing pushes them
        now = time.time()
        results: list[CacheResult[Any] | None] = []
        flights: list[tuple[int, _Flight, Entry | None, bool]] = []
        for index, request in enumerate(requests):
            entry = self._read_entry(request.key, request.policy.ttl)
            if entry is not None and now - entry.fetched_at < request.policy.ttl:
                results.append(CacheResult.of(entry, "hit"))
                if now - entry.fetched_at >= request.policy.ttl * (1 - REFRESH_AHEAD) and self._spare(
                    request.policy.upstream
                ):
                    self._flight(request, entry)  # refreshed ahead, in the background
                continue
            results.append(None)
            if entry is None:
                entry = self._superseded(request.key, request.policy, now)
            flight, leading = self._flight(request, entry)
            flights.append((index, flight, entry, leading))
        if flights and self._waiting.acquire(blocking=False):
            # Wait for each fetch until its own answer deadline (counted from when it started,
            # so a fetch that is already late holds nobody); at most `max_waiting` requests of
            # this process wait at once, the others answer at once with what there is.
            try:
                for index, flight, entry, _ in flights:
                    policy = requests[index].policy
                    current = policy.current(entry, now)
                    if (
                        entry is not None
                        and not current
                        and not isinstance(entry, Superseded)
                        and self._known_failing(requests[index], entry)
                    ):
                        # Its last refresh failed, here or in another worker (a hang, an outage):
                        # this one will most likely fail too. The old data now, marked stale,
                        # holds no thread. (Not data a change set aside: the upstream's last
                        # failure may be that change's, the key read anew has not failed yet.)
                        continue
                    within = policy.refresh_within if current else policy.answer_within
                    flight.done.wait(max(0.0, flight.started + within - time.monotonic()))
            finally:
                self._waiting.release()
        for index, flight, entry, leading in flights:
            results[index] = self._outcome(requests[index], flight, entry, own=leading)
        final = [result for result in results if result is not None]
        for request, result in zip(requests, final, strict=True):
            self.observer.result(request.widget or request.key.split(":", 2)[1], result.source)
        return final

    def peek_fresh(self, requests: Sequence[Request[Any]]) -> list[CacheResult[Any]] | None:
        """Every request's entry when all are within their TTL now, else None.

        Reads only (the worker's kept copy, else the store): no fetch starts and nothing waits.
        The shell draws a card with its data from these when they are all there.
        """
        self.broadcast.catch_up()
        now = time.time()
        found: list[CacheResult[Any]] = []
        for request in requests:
            entry = self._read_entry(request.key, request.policy.ttl)
            if entry is None or now - entry.fetched_at >= request.policy.ttl:
                return None
            found.append(CacheResult.of(entry, "hit"))
        return found

    def _outcome(
        self, request: Request[Any], flight: _Flight, entry: Entry | None, own: bool
    ) -> CacheResult[Any]:
        """The flight's result if it landed, else what there is meanwhile."""
        landed = flight.result if flight.done.is_set() else None
        if landed is not None:
            if landed.source == "miss" and not own:
                return CacheResult(landed.value, landed.fingerprint, landed.fetched_at, "coalesced")
            return landed
        return self._meanwhile(request, entry, flight)

    def _meanwhile(self, request: Request[Any], entry: Entry | None, flight: _Flight) -> CacheResult[Any]:
        """A fetch is under way: current-enough data, stale data with a reason, or nothing yet."""
        policy = request.policy
        failure = self._read_failure(request.key)
        if entry is None:
            if failure is not None:
                return CacheResult(None, None, None, "error", failure.reason)
            return CacheResult(None, None, None, "pending")
        if policy.current(entry, time.time()):
            return CacheResult.of(entry, "coalesced")
        failing = None if failure is not None else self._known_failing(request, entry)
        if failure is None and failing is None:
            if time.monotonic() - flight.started < policy.answer_within:
                # The refresh has only just begun and this request could not wait for it (other
                # requests were waiting): it is not late. The old data is shown for what it is
                # (its fetch time), and the card asks again soon instead of calling the upstream slow.
                return CacheResult.of(entry, "pending")
            # Past the time a request waits, as stale as if it had fetched itself; the refresh
            # may still land (a slow upstream, a board read anew after a change): ask again soon.
            return CacheResult(
                entry.value, entry.fingerprint, entry.fetched_at, "stale", policy.too_slow, True
            )
        # Its upstream failing: stale, with what failed.
        return CacheResult.of(entry, "stale", failure.reason if failure else failing)

    # --- flights ---------------------------------------------------------------------------

    def _flight(self, request: Request[Any], entry: Entry | None) -> tuple[_Flight, bool]:
        """The flight for this key in this process, started here when there is none."""
        with self._lock:
            flight = self._flights.get(request.key)
            if flight is not None:
                return flight, False
            flight = self._flights[request.key] = _Flight()
        try:
            self._count(request.policy.upstream, 1)
            self._pool(request.policy.upstream).submit(self._fly, request, entry, flight)
        except RuntimeError:  # the pool is shutting down (the worker exits)
            self._count(request.policy.upstream, -1)
            self._land(request.key, flight, self._degraded(entry, request.policy.too_slow))
        return flight, True

    def _pool(self, upstream: str) -> ThreadPoolExecutor:
        """The upstream's fetch threads, created in the worker (not before gunicorn forks)."""
        with self._lock:
            if self._pools_pid != os.getpid():
                self._pools = {}
                self._pools_pid = os.getpid()
            pool = self._pools.get(upstream)
            if pool is None:
                pool = self._pools[upstream] = ThreadPoolExecutor(
                    self.threads_of(upstream), thread_name_prefix=f"fetch-{upstream}"
                )
            return pool

    def _fly(self, request: Request[Any], entry: Entry | None, flight: _Flight) -> None:
        try:
            result = self._lead(request, entry)
        except Exception:  # a bug in a client: the followers stop waiting, the card says so
            log.exception("fetch failed unexpectedly", extra={"event": "fetch_crashed", "key": request.key})
            result = self._degraded(entry, request.policy.too_slow)
        finally:
            self._count(request.policy.upstream, -1)
        self._land(request.key, flight, result)

    def _count(self, upstream: str, change: int) -> None:
        with self._lock:
            self._queued[upstream] = self._queued.get(upstream, 0) + change

    def _spare(self, upstream: str) -> bool:
        """Whether the upstream's fetch threads have room for a refresh ahead of its TTL: one is
        only worth it when it delays no fetch that a card is waiting for."""
        return self._queued.get(upstream, 0) < self.threads_of(upstream)

    def threads_of(self, upstream: str) -> int:
        """How many fetches of `upstream` this process runs at once."""
        return self._fetch_threads.get(upstream, self.FETCH_THREADS)

    def _land(self, key: str, flight: _Flight, result: CacheResult[Any]) -> None:
        """Hand the result to whoever waits and forget the flight (unless invalidation already did)."""
        flight.result = result
        flight.done.set()
        with self._lock:
            if self._flights.get(key) is flight:
                del self._flights[key]

    def _lead(self, request: Request[Any], entry: Entry | None) -> CacheResult[Any]:
        """The one fetch per process for this key; coordinates with other processes."""
        key, policy = request.key, request.policy
        failure = self._read_failure(key)
        if failure is not None and (entry is None or failure.at > entry.fetched_at):
            return self._degraded(entry, failure.reason)
        breaker = self.breaker(policy.upstream)
        if entry is not None:
            breaker.answered_since(entry.fetched_at)  # another worker fetched it after our failure
        if breaker.state is CircuitState.OPEN:
            return self._degraded(entry, self._open_message(breaker, policy))
        began = time.monotonic()
        held: bytes | None = b""  # the store's tag of what it held at the last whole read
        while True:
            lock = self.store.try_lock(key, ttl=policy.wait_timeout + 2)
            if lock is not None:
                try:
                    return self._fetch_locked(request, entry, breaker)
                finally:
                    lock.release()
            # Another process is fetching this key: its result lands in the store. Its tag is
            # looked at each time; the entry is read (and decoded) only when the tag moved.
            waited = time.monotonic() - began
            time.sleep(min(self.POLL_INTERVAL_MAX, self.POLL_INTERVAL + waited / 4))
            tag = self._safe_tag(key)
            if tag is None or tag != held:
                held = tag
                other = self._read_entry(key)
                if other is not None and (entry is None or other.fetched_at > entry.fetched_at):
                    return CacheResult.of(other, "coalesced")
            failure = self._read_failure(key)
            if failure is not None:
                return self._degraded(entry, failure.reason)
            if time.monotonic() - began > policy.wait_timeout:
                return self._degraded(entry, policy.too_slow)

    def _fetch_locked(
        self, request: Request[Any], entry: Entry | None, breaker: CircuitBreaker
    ) -> CacheResult[Any]:
        key, policy = request.key, request.policy
        if self.store.shared:
            # Another process may have refreshed the key while we waited for the lock (a fresh
            # entry newer than ours: a refresh ahead of the TTL starts from a fresh one).
            latest = self._read_entry(key)
            if (
                latest is not None
                and time.time() - latest.fetched_at < policy.ttl
                and (entry is None or latest.fetched_at > entry.fetched_at)
            ):
                return CacheResult.of(latest, "coalesced")
        if not breaker.allow():
            return self._degraded(entry, self._open_message(breaker, policy))
        seen = self.store.read_counter(SEQUENCE_KEY)  # an invalidation after this wins
        began = time.monotonic()
        try:
            value = request.fetch()
        except UpstreamError as exc:
            elapsed = time.monotonic() - began
            if isinstance(exc, UpstreamRejected):
                # The upstream answered: it refused this one request (a query it cannot run),
                # which says nothing of its health. The other parts that read it go on.
                breaker.record_success()
            else:
                breaker.record_failure(exc.reason, exc.retry_after)
            self.observer.upstream_call(policy.upstream, exc.outcome, elapsed)
            log.warning(
                "upstream call failed",
                extra={
                    "event": "upstream_error",
                    "upstream": policy.upstream,
                    "widget": request.widget,
                    "outcome": exc.outcome,
                    "error": exc.message,
                    "detail": exc.detail,
                    "duration_ms": round(elapsed * 1000, 1),
                },
            )
            # Kept as long as the entry (a refresh's failure is told until one succeeds); the
            # hold before the next try is `failure_hold` from its time (`_read_failure`).
            kept = max(self.failure_hold, policy.ttl + policy.stale_ttl)
            self.store.set(self._failure_key(key), Failure(exc.reason, time.time()), kept)
            return self._degraded(entry, exc.reason)
        self.observer.upstream_call(policy.upstream, "ok", time.monotonic() - began)
        breaker.record_success()
        fresh = Entry(value, fingerprint(value), time.time())
        mark = self._kept.mark() if self._kept is not None else None
        written, tag = self.store.set_unless_newer(
            key, fresh, policy.ttl + policy.stale_ttl, _marks_of(key), seen
        )
        if written:
            self.store.delete(self._failure_key(key))
            if self._kept is not None and mark is not None and tag is not None:
                # This worker's next polls take what it has just fetched, rather than reading and
                # decoding it back from the store (75 ms of CPU for 1,000 people's Taiga board).
                self._kept.keep(key, _Kept(fresh, tag), mark)
        else:
            log.info(
                "fetched data predates an invalidation: not kept",
                extra={"event": "fetch_superseded", "key": key},
            )
        return CacheResult.of(fresh, "miss")

    def breaker(self, upstream: str) -> CircuitBreaker:
        """The circuit breaker of one upstream (created on first use)."""
        found = self._breakers.get(upstream)
        if found is None:
            with self._lock:
                found = self._breakers.setdefault(
                    upstream,
                    CircuitBreaker(
                        upstream,
                        self._policies.get(upstream, BreakerPolicy()),
                        on_change=self.observer.breaker_state,
                    ),
                )
        return found

    def _known_failing(self, request: Request[Any], entry: Entry) -> Reason | None:
        """Why refreshing `entry` failed last, if it did: the key's failure record, past its hold
        too, when it is newer than the entry (this worker or another tried, and failed), else the
        upstream's last call in this process (while none has succeeded since, here or, as the
        entry's fetch time shows, in another worker). The record comes first: this process's
        memory may be of an earlier outage, other workers having found the upstream back
        meanwhile."""
        value = self._safe_get(self._failure_key(request.key))
        if isinstance(value, Failure) and value.at > entry.fetched_at:
            return value.reason
        breaker = self.breaker(request.policy.upstream)
        breaker.answered_since(entry.fetched_at)
        last = breaker.last_error
        if isinstance(last, Reason):
            return last
        return None

    @staticmethod
    def _open_message(breaker: CircuitBreaker, policy: FetchPolicy) -> Reason:
        """While the circuit is open, the card says what the last failure was."""
        last = breaker.last_error
        if isinstance(last, Reason):
            return last
        return Reason.of(N_("%(upstream)s is failing"), upstream=policy.label)

    @staticmethod
    def _degraded(entry: Entry | None, reason: Reason) -> CacheResult[Any]:
        if entry is None:
            return CacheResult(None, None, None, "error", reason)
        return CacheResult.of(entry, "stale", reason)

    # --- invalidation ----------------------------------------------------------------------

    def invalidate(self, target: str, amend: Callable[[Any], Any] | None = None) -> None:
        """Drop a key, or every key under a prefix ending in ":", in every worker of every replica.

        The store's entries and failure records go, each worker forgets its kept copies and
        its flights under way, and a fetch that began before this call cannot store its
        (older) result afterwards. A single key's last entry is kept aside, passed through
        `amend` (the change that invalidated it, applied to what the cards showed), to be shown
        while the key is fetched anew (see `Superseded`).
        """
        if not target or not (target.endswith(":") or ":" in target):
            raise ValueError(f"not a cache key or a prefix ending in ':': {target!r}")
        if not target.endswith(":"):
            self._set_aside(target, amend)
        if self.store.shared:
            self._clear(target)  # once, for everyone
        self.broadcast.publish(TOPIC, target)  # every process, this one too, runs _forget
        log.info("cache invalidated", extra={"event": "cache_invalidated", "target": target})

    def _set_aside(self, key: str, amend: Callable[[Any], Any] | None) -> None:
        """Keep `key`'s entry (or the one already set aside, when the key has not been read anew
        since an earlier invalidation), amended, for while the key is read anew."""
        aside = _aside_key(key)
        if amend is None:
            self.store.copy(key, aside, MARK_TTL)  # as stored: nothing decoded or encoded again
            return
        # Changes to one key at the same moment (people changing tasks of the same board) amend
        # it in turn, in every worker and replica, each from what the one before set aside:
        # otherwise the last to write would drop the others' changes from what the cards show.
        with self.amending_lock(key):
            lock = self._aside_lock(aside)
            try:
                entry = self._aside_base(key)
                if entry is None:
                    return
                try:
                    value = amend(entry.value)
                except Exception:  # a bug in the amendment: what the cards showed, as it was
                    log.exception(
                        "amending an invalidated entry failed", extra={"event": "amend_failed", "key": key}
                    )
                    value = entry.value
                changed = value is not entry.value
                self.store.set(
                    aside,
                    Entry(value, fingerprint(value) if changed else entry.fingerprint, entry.fetched_at),
                    MARK_TTL,
                )
            finally:
                if lock is not None:
                    lock.release()

    def amending_lock(self, key: str) -> threading.Lock:
        """This worker's lock for changes amending what `key` set aside: changes to one key
        take turns, changes to other keys (mostly) do not wait for them."""
        return self._amending[hash(key) % READ_STRIPES]

    def _aside_lock(self, aside: str) -> Lock | None:
        """The store's lock on `aside` for every process, waited for up to ASIDE_WAIT s (then the
        change goes on without it: its answer is never held longer)."""
        until = time.monotonic() + ASIDE_WAIT
        while True:
            lock = self.store.try_lock(aside, ttl=ASIDE_WAIT + 3)
            if lock is not None or time.monotonic() >= until:
                return lock
            time.sleep(self.POLL_INTERVAL)

    def _aside_base(self, key: str) -> Entry | None:
        """What a change amends: the key's entry, unless what is set aside comes from the same
        fetch or a later one (it then holds the earlier changes as well; the key's entry may be
        a copy this worker kept from before them, the broadcast dropping it a moment later)."""
        kept = self._kept.get(key) if self._kept is not None else None  # decoded already
        current = kept.entry if kept is not None else self._safe_get(key)
        if isinstance(current, Entry) and not self._holds(_aside_key(key)):
            return current  # nothing set aside: nothing more is read
        aside = self._read_entry(_aside_key(key), 0.0)  # the store's tag is checked: never older
        if not isinstance(current, Entry) or (aside is not None and aside.fetched_at >= current.fetched_at):
            return aside
        return current

    def _holds(self, key: str) -> bool:
        """Whether the store has `key`, read whole only by a store without tags (in-process)."""
        if self.store.shared:
            return self._safe_tag(key) is not None
        return self._safe_get(key) is not None

    def _superseded(self, key: str, policy: FetchPolicy, now: float) -> Superseded | None:
        """The entry set aside when `key` was invalidated, while younger than the stale limit.
        Read like any entry (decoded once per worker, then known by its tag): every poll of a
        card asks for it while the key is read anew."""
        value = self._read_entry(_aside_key(key), policy.ttl)
        if value is not None and now - value.fetched_at < policy.ttl + policy.stale_ttl:
            return Superseded(value.value, value.fingerprint, value.fetched_at)
        return None

    def _clear(self, target: str) -> None:
        """Mark the invalidation (fetches that began before cannot write) and delete what it covers."""
        sequence = self.store.incr(SEQUENCE_KEY)
        self.store.set_counter(_mark_key(target), sequence, MARK_TTL)
        if target.endswith(":"):
            self.store.delete_prefix(target)
            self.store.delete_prefix(self._failure_key(target))
            self.store.delete_prefix(_aside_key(target))  # nothing is set aside for a prefix
        else:
            self.store.delete(target)
            self.store.delete(self._failure_key(target))

    def _forget(self, target: str) -> None:
        """`target` was invalidated (here or in another process): forget kept copies and flights."""

        def covered(key: str) -> bool:
            return key == target or (target.endswith(":") and key.startswith(target))

        if not self.store.shared:
            self._clear(target)  # each process's own store
        if self._kept is not None:
            if target.endswith(":"):
                self._kept.forget_prefix(target)
                self._kept.forget_prefix(_aside_key(target))
            else:
                self._kept.forget(target)
                self._kept.forget(_aside_key(target))  # set aside anew by this invalidation
        with self._lock:
            for key in [key for key in self._flights if covered(key)]:
                del self._flights[key]  # its waiters still get its result; newcomers fetch anew

    # --- store access: a broken entry is a miss, never an exception ---------------------

    @staticmethod
    def _failure_key(key: str) -> str:
        return f"failure:{key}"

    def _read_entry(self, key: str, ttl: float | None = None) -> Entry | None:
        """The entry of `key`: the worker's kept copy while younger than `ttl`, else the store's.

        Without `ttl` the store is always read (and nothing is kept).
        """
        kept = self._kept
        if kept is None or ttl is None:
            value = self._safe_get(key)
            return value if isinstance(value, Entry) else None
        found = kept.get(key)
        if found is not None and time.time() - found.entry.fetched_at < ttl:
            return found.entry
        with self._reading[hash(key) % READ_STRIPES]:
            return self._read_entry_locked(kept, key, ttl)

    def _read_entry_locked(self, kept: KeptRecords[_Kept], key: str, ttl: float) -> Entry | None:
        found = kept.get(key)
        if found is not None and time.time() - found.entry.fetched_at < ttl:
            return found.entry  # read by the thread this one waited for
        mark = kept.mark()
        if found is not None and found.tag is not None and self._safe_tag(key) == found.tag:
            # Past its TTL and not yet refreshed (a refresh under way, or failing): the store
            # still holds the very value kept here, which is not read and decoded again.
            kept.keep(key, found, mark)
            return found.entry
        value, tag = self._safe_get_tagged(key)
        if isinstance(value, Entry):
            kept.keep(key, _Kept(value, tag), mark)
            return value
        return None

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

    def _safe_get_tagged(self, key: str) -> tuple[Any, bytes | None]:
        try:
            return self.store.get_tagged(key)
        except Exception as exc:  # as in _safe_get
            log.warning("cache entry unreadable", extra={"event": "cache_unreadable", "error": str(exc)})
            return None, None

    def _safe_tag(self, key: str) -> bytes | None:
        try:
            return self.store.tag(key)
        except Exception:  # no tag: the value is read whole, and that read says what failed
            return None
