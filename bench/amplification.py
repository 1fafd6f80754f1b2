"""2. Upstream amplification: 200 users polling every widget every 15 s, with and without Redis.

The simulator counts the calls it receives; each fetch of a status page's cache key reads the
page once (see stats.calls_per_key). Goal per key: ceil(run / TTL) + 1 with Redis, whatever the
number of users; without Redis each worker caches on its own, so that many times more.
"""

from __future__ import annotations

from .context import Bench, session_cookies
from .report import at_most
from .stats import amplification_limit, calls_per_key
from .users import Users, failed, summary

USERS = 200
INTERVAL = 15.0
WORKERS = 2
SESSIONS = 10  # logins shared by the users (a login is not what this figure measures)


def measure(bench: Bench) -> None:
    seconds = bench.durations.amplification
    section = "2 amplification"
    for redis in (True, False):
        with bench.portal(redis=redis, env={"PORTAL_WORKERS": str(WORKERS)}) as server:
            cookies = session_cookies(server.url, SESSIONS)
            ttl = float(bench.config()["widgets"]["status"]["ttl"])
            bench.sim.reset()
            samples = Users(server.url, cookies, ["/widgets/status"], USERS, INTERVAL).run_for(seconds)
            per_key = calls_per_key(bench.sim.calls())
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
            "requests": stats,
        }
