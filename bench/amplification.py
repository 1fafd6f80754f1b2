"""2. Upstream amplification: 200 users polling every widget every 15 s, with and without Redis.

The simulator counts the calls it receives; each fetch of a status page's cache key reads the
page once (see stats.calls_per_key). Goal per key: ceil(run / TTL) + 1 with Redis, whatever the
number of users; without Redis each worker caches on its own, so that many times more.

The metrics and incidents cards read a real Prometheus (bench/monitoring.py), which counts the
calls it answers itself (`prometheus_http_requests_total`). One fetch of every part makes a
known number of calls (a range query per gauge; the alerts, the rules and a range query for
the incidents), so the goal is that many per cache period, plus the first fetch; and the same
run with 10 users makes as many calls as with 200.
"""

from __future__ import annotations

from typing import Any

from .context import Bench, session_cookies
from .monitoring import calls_between
from .report import at_most
from .stats import amplification_limit, calls_per_key
from .users import Users, failed, summary

USERS = 200
FEW_USERS = 10
INTERVAL = 15.0
WORKERS = 2
SESSIONS = 10  # logins shared by the users (a login is not what this figure measures)
STATUS = "/widgets/status"
PROMETHEUS_CARDS = ("/widgets/metrics", "/widgets/incidents")
INCIDENTS_CALLS = 3  # /api/v1/alerts; /api/v1/rules and a range query of ALERTS


def prometheus_limit(config: dict[str, Any], seconds: float, caches: int) -> tuple[int, int]:
    """(the most calls to Prometheus a run may make, the calls of one fetch of every part).

    One fetch per TTL of each card, plus the first, in each cache (each worker without Redis).
    """
    widgets = config["widgets"]
    gauges = len(widgets["metrics"]["gauges"])  # one query per gauge (range or instant)
    limit = amplification_limit(seconds, float(widgets["metrics"]["ttl"]), caches) * gauges
    limit += amplification_limit(seconds, float(widgets["incidents"]["ttl"]), caches) * INCIDENTS_CALLS
    return limit, gauges + INCIDENTS_CALLS


def measure(bench: Bench) -> None:
    seconds = bench.durations.amplification
    section = "2 amplification"
    paths = [STATUS, *(PROMETHEUS_CARDS if bench.monitoring else ())]
    prometheus_calls: dict[str, int] = {}
    for redis in (True, False):
        with bench.portal(redis=redis, env={"PORTAL_WORKERS": str(WORKERS)}) as server:
            cookies = session_cookies(server.url, SESSIONS)
            ttl = float(bench.config()["widgets"]["status"]["ttl"])
            bench.sim.reset()
            before = bench.monitoring.api_calls() if bench.monitoring else {}
            samples = Users(server.url, cookies, paths, USERS, INTERVAL).run_for(seconds)
            per_key = calls_per_key(bench.sim.calls())
            if bench.monitoring:
                prometheus_calls = calls_between(before, bench.monitoring.api_calls())
        limit = amplification_limit(seconds, ttl, 1 if redis else WORKERS)
        label = "with Redis" if redis else f"without Redis ({WORKERS} workers)"
        worst = max(per_key.values(), default=0)
        counts = ", ".join(f"{key} {n}" for key, n in sorted(per_key.items()))
        bench.add(
            section,
            f"upstream fetches per key, {USERS} users × {seconds:g} s, {label}",
            f"{worst} ({counts})",
            f"≤ {limit}",
            bool(per_key) and at_most(worst, limit),
        )
        if bench.monitoring:
            _prometheus_figure(bench, prometheus_calls, seconds, 1 if redis else WORKERS, USERS, label)
        stats = summary(samples)
        errors = failed(samples)
        bench.add(
            section, f"requests / errors, {label}", f"{stats['requests']} / {errors}", "0 errors", errors == 0
        )
        bench.details[f"amplification_{'redis' if redis else 'local'}"] = {
            "users": USERS,
            "interval_s": INTERVAL,
            "seconds": seconds,
            "ttl_s": ttl,
            "calls_per_key": per_key,
            "limit": limit,
            "prometheus_calls": prometheus_calls,
            "requests": stats,
        }
    if bench.monitoring:
        _few_users(bench, seconds, sum(bench.details["amplification_redis"]["prometheus_calls"].values()))


def _prometheus_figure(
    bench: Bench, calls: dict[str, int], seconds: float, caches: int, users: int, label: str
) -> None:
    limit, cycle = prometheus_limit(bench.config(), seconds, caches)
    ttl = bench.config()["widgets"]["metrics"]["ttl"]
    total = sum(calls.values())
    by_handler = ", ".join(f"{handler.removeprefix('/api/v1/')} {n}" for handler, n in calls.items())
    bench.add(
        "2 amplification",
        f"Prometheus API calls (its own count), {users} users × {seconds:g} s, {label}",
        f"{total} ({by_handler})",
        f"≤ {limit}: {cycle} per fetch of both cards, one per {ttl} s TTL and cache, + the first",
        0 < total <= limit,
    )


def _few_users(bench: Bench, seconds: float, many: int) -> None:
    """The same run, with Redis, with 10 users: Prometheus' calls must not grow with users."""
    assert bench.monitoring is not None
    with bench.portal(redis=True, env={"PORTAL_WORKERS": str(WORKERS)}) as server:
        cookies = session_cookies(server.url, 2)
        before = bench.monitoring.api_calls()
        samples = Users(server.url, cookies, list(PROMETHEUS_CARDS), FEW_USERS, INTERVAL).run_for(seconds)
        few = sum(calls_between(before, bench.monitoring.api_calls()).values())
    limit, cycle = prometheus_limit(bench.config(), seconds, 1)
    bench.add(
        "2 amplification",
        f"Prometheus API calls, {FEW_USERS} users then {USERS} users, with Redis",
        f"{few} then {many}",
        f"{USERS} users ≤ {FEW_USERS} users + one fetch ({cycle})",
        many <= few + cycle and failed(samples) == 0,
    )
    bench.details["amplification_prometheus_few_users"] = {"users": FEW_USERS, "calls": few, "limit": limit}
