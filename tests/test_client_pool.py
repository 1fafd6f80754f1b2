"""The pool that lends python-keycloak clients: bounded, one call per client, busy said clearly."""

from __future__ import annotations

import threading

import pytest

from portal.auth.client_pool import ClientPool


class Busy(Exception):
    pass


def test_clients_are_made_on_need_and_reused() -> None:
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    pool: ClientPool[object] = ClientPool(make, size=2, wait=0.1, busy=Busy)
    for _ in range(5):
        with pool.lend() as client:
            assert client is made[0]  # one call at a time: one client is enough
    assert pool.made == 1


def test_concurrent_calls_never_share_a_client_and_stay_within_the_size() -> None:
    pool: ClientPool[object] = ClientPool(object, size=2, wait=5.0, busy=Busy)
    in_use: set[int] = set()
    shared: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def call() -> None:
        start.wait()
        with pool.lend() as client:
            with lock:
                if id(client) in in_use:
                    shared.append(id(client))
                in_use.add(id(client))
            threading.Event().wait(0.05)
            with lock:
                in_use.discard(id(client))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert shared == []
    assert pool.made == 2


def test_all_clients_lent_too_long_raises_busy() -> None:
    pool: ClientPool[object] = ClientPool(object, size=1, wait=0.05, busy=Busy)
    with pool.lend(), pytest.raises(Busy), pool.lend():
        pass
    with pool.lend() as client:  # given back: lent again
        assert client is not None


def test_a_client_that_cannot_be_made_frees_its_place() -> None:
    def broken() -> object:
        raise OSError("no")

    pool: ClientPool[object] = ClientPool(broken, size=1, wait=0.05, busy=Busy)
    for _ in range(3):
        with pytest.raises(OSError, match="no"), pool.lend():
            pass
    assert pool.made == 0
