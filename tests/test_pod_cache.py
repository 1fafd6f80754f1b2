"""Without Redis, the workers of a pod share one cache (`PodStore`, files on tmpfs).

A person's polls land on either worker. With a cache in each worker, an outage made the card
show the last good data at one poll and "Data unavailable" at the next (the worker that had
fetched nothing), and each worker called every upstream for itself. Two `WidgetCache`s over two
`PodStore`s of one directory are two workers: they share nothing but the files, and flock locks
taken through separate opens exclude each other within one process as across processes.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from portal.caching.broadcast import FileBroadcast
from portal.caching.codec import Codec
from portal.caching.pod_store import PodStore
from portal.caching.stores import FileStore
from portal.caching.widget_cache import Entry, FetchPolicy, WidgetCache
from portal.upstreams.errors import Reason, UpstreamUnavailable
from simulators.base import SimServer

from .support.processes import eventually, portal_process
from .support.spoken import announced

CODEC = Codec("test-secret-key-0123456789")
KEY = "widget:status:shared:platform"
POLICY = FetchPolicy(
    ttl=0.5, stale_ttl=60, upstream="uptime_kuma", upstream_label="Uptime Kuma", answer_within=1
)


class Upstream:
    """A fetch that answers `value`, or fails while `down`, counting its calls."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.down = False
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.down:
            raise UpstreamUnavailable(
                "uptime_kuma", Reason.of("%(upstream)s answered HTTP 500", upstream="Uptime Kuma")
            )
        return self.value


class WorkerBroadcast(FileBroadcast):
    """The pod's broadcast file, read as one worker: workers are told apart by PID, and these
    two share the test's."""

    def sender(self) -> str:
        return f"{super().sender()}-{id(self)}"


def _worker(directory: Path) -> WidgetCache:
    """One worker's cache: its own store object and broadcast reader over the pod's files."""
    return WidgetCache(PodStore(directory / "cache", CODEC), broadcast=WorkerBroadcast(directory / "events"))


def test_the_pods_workers_fetch_a_key_once_and_all_show_its_last_good_data(tmp_path: Path) -> None:
    first, second = _worker(tmp_path), _worker(tmp_path)
    upstream = Upstream(["GitLab up"])

    assert first.get_or_fetch(KEY, upstream, POLICY).state == "ok"
    answer = second.get_or_fetch(KEY, upstream, POLICY)
    assert (answer.state, answer.value, upstream.calls) == ("ok", ["GitLab up"], 1)  # one fetch for the pod

    upstream.down = True
    time.sleep(POLICY.ttl + 0.1)
    assert first.get_or_fetch(KEY, upstream, POLICY).state == "stale"
    # The second worker never fetched: it shows the first one's data, stale, with the reason.
    later = second.get_or_fetch(KEY, upstream, POLICY)
    assert later.state == "stale"
    assert later.value == ["GitLab up"]
    assert str(later.error) == "Uptime Kuma answered HTTP 500"


def test_an_invalidation_in_one_worker_reaches_the_others_kept_copies(tmp_path: Path) -> None:
    first, second = _worker(tmp_path), _worker(tmp_path)
    policy = FetchPolicy(ttl=30, stale_ttl=60, upstream="taiga")
    assert second.get_or_fetch(KEY, lambda: "before", policy).value == "before"
    assert second.get_or_fetch(KEY, lambda: "unused", policy).source == "hit"  # kept by the worker

    first.invalidate(KEY)  # a write in the first worker

    assert second.get_or_fetch(KEY, lambda: "after", policy).value == "after"
    assert first.get_or_fetch(KEY, lambda: "unused", policy).value == "after"


def test_a_key_is_fetched_once_by_the_pod_while_its_workers_ask_at_once(tmp_path: Path) -> None:
    workers = [_worker(tmp_path) for _ in range(2)]
    calls = []
    gate = threading.Barrier(20)

    def slow() -> str:
        calls.append(1)
        time.sleep(0.3)
        return "data"

    def ask(index: int) -> str:
        gate.wait()
        return workers[index % 2].get_or_fetch(KEY, slow, POLICY).state

    with ThreadPoolExecutor(20) as pool:
        states = list(pool.map(ask, range(20)))
    assert len(calls) == 1
    assert set(states) <= {"ok", "pending"}
    assert eventually(lambda: all(w.get_or_fetch(KEY, slow, POLICY).state == "ok" for w in workers))


def test_entries_are_signed_tagged_and_listed(tmp_path: Path) -> None:
    store = PodStore(tmp_path, CODEC)
    store.set("widget:a:shared:x", Entry([1], "f", 1.0), 60)
    value, tag = store.get_tagged("widget:a:shared:x")
    assert value == Entry([1], "f", 1.0) and tag == store.tag("widget:a:shared:x")
    store.set("widget:a:shared:x", Entry([2], "g", 2.0), 60)
    assert store.tag("widget:a:shared:x") != tag  # a new value, a new tag
    # A file another secret signed (another application, a tampered file) is a miss.
    PodStore(tmp_path, Codec("another-secret-0123456789")).set("widget:a:shared:y", "forged", 60)
    assert store.get("widget:a:shared:y") is None
    store.set("widget:b:user:alice:z", "mine", 60)
    assert sorted(store.keys()) == ["widget:a:shared:x", "widget:a:shared:y", "widget:b:user:alice:z"]
    assert store.delete_prefix("widget:a:") == 2
    assert store.keys() == ["widget:b:user:alice:z"]


def test_a_write_the_directory_refuses_is_logged_once_and_the_data_still_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = PodStore(tmp_path / "pod", CODEC)
    cache = WidgetCache(store)
    entries = tmp_path / "pod" / "entries"
    entries.rmdir()
    entries.write_bytes(b"")  # no directory to write in (as a full tmpfs refuses, even root)
    with caplog.at_level(logging.WARNING):
        first = cache.get_or_fetch(KEY, lambda: "fetched", POLICY)
        store.set("widget:other:shared:x", "y", 60)
    assert (first.state, first.value) == ("ok", "fetched")
    assert store.get(KEY) is None
    refused = [r for r in caplog.records if getattr(r, "event", "") == "cache_write_failed"]
    assert len(refused) == 1


def test_the_sweep_keeps_at_most_max_entries_and_every_invalidation_counter(tmp_path: Path) -> None:
    store = PodStore(tmp_path, CODEC, max_entries=10)
    assert store.incr("inval:seq") == 1
    for index in range(15):
        store.set(f"widget:w:shared:{index:02}", index, 60)
        time.sleep(0.002)  # distinct modification times: the oldest go first
    store.set("widget:w:shared:gone", "expired", 0.001)
    store.sweep()
    keys = set(store.keys())
    assert "inval:seq" in keys and store.read_counter("inval:seq") == 1
    assert len(keys - {"inval:seq"}) <= 10
    assert "widget:w:shared:14" in keys and "widget:w:shared:00" not in keys


@pytest.mark.parametrize("kind", [PodStore, FileStore], ids=["cache", "sessions"])
def test_the_sweep_removes_what_a_write_killed_midway_left_and_nothing_under_way(
    kind: type[FileStore], tmp_path: Path
) -> None:
    store = kind(tmp_path, CODEC)
    store.set("widget:w:shared:x", "kept", 60)
    entries = tmp_path / "entries"
    abandoned, under_way = entries / "0123abcd.4242.1", entries / "4567cdef.4242.2"
    abandoned.write_bytes(b"half a val")
    under_way.write_bytes(b"being writ")
    os.utime(abandoned, (time.time() - 120, time.time() - 120))
    store.sweep()
    assert not abandoned.exists() and under_way.exists()
    assert store.get("widget:w:shared:x") == "kept"


def test_the_sweep_keeps_the_entries_within_max_bytes_oldest_first(tmp_path: Path) -> None:
    store = PodStore(tmp_path, CODEC, max_bytes=20_000)
    for index in range(10):
        store.set(f"widget:w:shared:{index}", "x" * 3_000, 60)  # about 3.2 kB each
        time.sleep(0.002)
    store.sweep()
    keys = sorted(store.keys())
    assert keys == [f"widget:w:shared:{index}" for index in range(4, 10)]  # six fit in 20 kB


def test_a_full_space_is_swept_and_the_write_tried_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PodStore(tmp_path, CODEC)
    store.set("widget:w:shared:old", "expired", 0.001)
    time.sleep(1.1)  # stores keep whole seconds
    write = store._write
    refusals = [OSError(errno.ENOSPC, "No space left on device")]

    def full_once(key: str, data: bytes) -> None:
        if refusals:
            raise refusals.pop()
        write(key, data)

    monkeypatch.setattr(store, "_write", full_once)
    store.set("widget:w:shared:new", "kept", 60)
    assert store.get("widget:w:shared:new") == "kept"
    assert store.keys() == ["widget:w:shared:new"]  # the expired entry made room


# --- as a person sees it: two gunicorn workers, no Redis ------------------------------------


def test_during_an_outage_every_poll_shows_the_last_good_data_whichever_worker_answers(
    kuma: SimServer, portal_config: dict[str, Any], tmp_path: Path
) -> None:
    """The status card, polled on new connections (as a browser's polls 30 s apart are) by a
    pod of two workers without Redis: one fetch for the pod, then, with Uptime Kuma answering
    500, its data at every poll, marked stale, never "Data unavailable" (the portal's default
    language, French, since the polls name none)."""
    assert not portal_config["cache"].get("redis_url")
    portal_config["widgets"]["status"].update(slugs=["platform"], ttl=1)
    page = "/api/status-page/platform"

    def polls(count: int) -> list[str]:
        def one(_: int) -> str:
            with requests.Session() as fresh:  # a connection of its own: either worker accepts it
                return fresh.get(f"{url}/widgets/status", headers={"HX-Request": "true"}, timeout=10).text

        with ThreadPoolExecutor(4) as pool:  # four at once: both workers take some
            return list(pool.map(one, range(count)))

    with portal_process(portal_config, tmp_path, workers=2, threads=4) as url:
        assert all("GitLab" in card for card in polls(16))
        assert kuma.count(page) == 1  # the pod fetched the page once, not once per worker

        kuma.set_fault("error500")
        # Past the TTL and the grace a refresh may take (the upstream's timeout + 1 s), while
        # which data still counts as current.
        time.sleep(1 + 1.5 + 1 + 0.3)
        cards = polls(24)

    unavailable = [card for card in cards if "Données indisponibles" in card]
    assert not unavailable, f"{len(unavailable)} of {len(cards)} polls had no data"
    assert all("GitLab" in card for card in cards)
    # A poll that came while the first refresh was under way, and could not wait for it, shows
    # the data and asks again soon; every other one says it is stale, and why.
    told = [card for card in cards if 'data-poll="soon"' not in card]
    assert len(told) >= len(cards) // 2
    for card in told:
        assert "stale-banner" in card and "Uptime Kuma a renvoyé le code HTTP\u00a0500" in card, card[:2000]
        heard = announced(card)  # to a screen reader too: from when, and why
        assert "Données de " in heard and "Uptime Kuma a renvoyé le code HTTP\u00a0500" in heard, heard


def _count_under_lock(directory: Path, rounds: int) -> None:
    """Add one to a counter file `rounds` times, each time under the pod's lock of one key."""
    store = FileStore(directory, CODEC)
    counter = directory / "counter"
    for _ in range(rounds):
        lock = None
        while lock is None:
            lock = store.try_lock("auth:refresh:a-session", 5)
        try:
            counter.write_text(str(int(counter.read_text()) + 1))
        finally:
            lock.release()


def test_a_lock_file_goes_with_its_lock_and_the_lock_still_excludes_across_processes(tmp_path: Path) -> None:
    """A lock per session refresh or per person's key left a file each, for the pod's life
    (tens of thousands over months of logins without Redis). The file now goes as the lock is
    released; four processes hammering one key still never hold it together (no count lost)."""
    directory = tmp_path / "sessions"
    store = FileStore(directory, CODEC)
    for session in range(50):
        lock = store.try_lock(f"auth:refresh:session-{session}", 5)
        assert lock is not None
        assert store.try_lock(f"auth:refresh:session-{session}", 5) is None  # held
        lock.release()
    assert os.listdir(directory / "locks") == []

    (directory / "counter").write_text("0")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_count_under_lock, args=(directory, 300)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert (directory / "counter").read_text() == str(4 * 300)
    assert os.listdir(directory / "locks") == []
