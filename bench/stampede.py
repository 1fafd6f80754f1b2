"""3. Cold-key stampede: 100 concurrent first requests across 2 workers sharing Redis.

The cache is cold (a key prefix of its own, new worker processes) and the upstream answers in
0.3 s, so that every request arrives while the first fetch is under way. Goal: one fetch per key.
"""

from __future__ import annotations

import threading

import requests

from .context import Bench, session_cookies
from .stats import calls_per_key

REQUESTS = 100
WORKERS = 2
UPSTREAM_LATENCY = 0.3


def measure(bench: Bench) -> None:
    with bench.portal(redis=True, env={"PORTAL_WORKERS": str(WORKERS)}) as server:
        cookies = session_cookies(server.url, 4)
        bench.sim.reset()
        bench.sim.latency(UPSTREAM_LATENCY)
        barrier = threading.Barrier(REQUESTS)
        statuses: list[int] = []
        lock = threading.Lock()

        def one(index: int) -> None:
            headers = {"Cookie": cookies[index % len(cookies)], "HX-Request": "true"}
            barrier.wait()
            try:
                status = requests.get(server.url + "/widgets/status", headers=headers, timeout=30).status_code
            except requests.RequestException:
                status = 0
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        bench.sim.latency(0)
        per_key = calls_per_key(bench.sim.calls())
    section = "8 stampede"
    worst = max(per_key.values(), default=0)
    counts = ", ".join(f"{key} {n}" for key, n in sorted(per_key.items()))
    bench.add(
        section,
        f"upstream fetches per key, {REQUESTS} concurrent cold requests, {WORKERS} workers + Redis",
        f"{worst} ({counts})",
        "1",
        bool(per_key) and worst == 1,
    )
    ok = statuses.count(200)
    bench.add(section, "answers 200", f"{ok} / {REQUESTS}", f"{REQUESTS}", ok == REQUESTS)
    bench.details["stampede"] = {"calls_per_key": per_key, "statuses": statuses}
