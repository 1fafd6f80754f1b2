"""7. Faults under load: the upstream switched to each fault in turn, then Redis killed and restarted.

40 users poll the status card every second throughout. Goals: no 5xx (nor a dropped
connection) at any time, and while the upstream misbehaves the card says what is wrong, in
words (checked in the fragments the users received). A short TTL and breaker backoff make the
card retry during each fault and recover quickly after it; a 2 s upstream timeout lets it say
so early. Redis is stopped with SIGTERM and started again, empty, on the same port.
"""

from __future__ import annotations

import time

import requests

from .context import Bench, session_cookies
from .users import Users, server_errors

CARD = "/widgets/status"
USERS = 40
TIMEOUT = 2.0  # the upstream's timeout here: each fault shows within the window
# What the card says for each fault (English: the users ask for English here).
MODES: dict[str, tuple[str, ...]] = {
    "timeout": ("did not answer within",),
    "error500": ("is failing (HTTP 500",),
    "garbage": ("not valid JSON",),
    "slow": ("too slow", "did not answer within"),
}


def _wait_ok(base: str, cookie: str, limit: float = 60.0) -> None:
    """Until the card shows fresh data again (the breaker closed, the failure hold over)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        answer = requests.get(base + CARD, headers={"Cookie": cookie, "HX-Request": "true"}, timeout=10)
        if b'class="widget-content is-ok"' in answer.content:
            return
        time.sleep(0.5)
    raise TimeoutError("the status card did not recover after a fault")


def measure(bench: Bench) -> None:
    seconds = bench.durations.fault
    section = "7 faults"
    details: dict[str, object] = {}
    upstream = {"timeout": TIMEOUT, "breaker_backoff": 2, "breaker_backoff_max": 4}
    with bench.portal(redis=True, upstream=upstream, ttl=3) as server:
        cookies = session_cookies(server.url, 6)
        users = Users(server.url, cookies, [CARD], USERS, 1.0, keep_bodies=True, language="en").start()
        try:
            for mode, words in MODES.items():
                _wait_ok(server.url, cookies[0])
                start = users.now()
                # A hang outlasts the fault window: the portal's timeout is what ends each call.
                bench.sim.fault(mode, seconds=60) if mode == "timeout" else bench.sim.fault(mode)
                users.wait_until(start + seconds)
                bench.sim.reset()
                end = users.now() + 5  # answers to requests sent during the fault
                users.wait_until(end)
                during = [s for s in list(users.samples) if start <= s.at < end]
                bodies = [body for at, _, body in list(users.bodies) if start <= at < end]
                said = sum(1 for body in bodies if any(w.encode() in body for w in words))
                errors = server_errors(during)
                bench.add(
                    section,
                    f"upstream {mode}: 5xx / fragments stating the fault",
                    f"{errors} / {said}",
                    "0 / > 0",
                    errors == 0 and said > 0,
                )
                details[mode] = {"requests": len(during), "server_errors": errors, "stating_fault": said}
            _wait_ok(server.url, cookies[0])
            start = users.now()
            bench.redis.stop()
            users.wait_until(start + bench.durations.redis_down)
            bench.redis.start()
            users.wait_until(users.now() + bench.durations.redis_down)
            during = [s for s in list(users.samples) if s.at >= start]
        finally:
            users.stop()
    errors = server_errors(during)
    logged_out = sum(1 for s in during if s.status == 401)
    bench.add(section, "Redis killed and restarted: 5xx", str(errors), "0", errors == 0)
    bench.add(section, "Redis restarted empty: polls sent to the login (401)", str(logged_out))
    details["redis"] = {"requests": len(during), "server_errors": errors, "logged_out": logged_out}
    bench.details["faults"] = details
