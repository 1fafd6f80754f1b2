"""8. Taiga's load against the portal's users: 10, 100 and 1,000 people polling both Taiga cards.

Each person is a distinct user of the Keycloak-shaped provider (a realm made for the run) and of
the Taiga simulator (`crowd_world`: one task, one story and one issue each, in ten projects), logged in
through the provider's form (access tokens of an hour: no refresh during the run). For each
count, a fresh portal (2 workers, Redis, TTL 20 s) is polled by that many people, every card
every 15 s, for the run. The simulator counts every call
it receives: the board (projects, tasks, stories, issues, sprints, users) is read once per TTL for
everyone, the statuses once per `catalog_ttl`, so the calls per cache period are the same
whatever the number of people. Goal: the same count for each number of people (within one
board read: where a period boundary falls), and no error.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from portal.caching.widget_cache import REFRESH_AHEAD
from simulators.taiga import SERVICE_ACCOUNT
from tests.support.keycloak import SIM_DIR, KeycloakSim, authenticate, start_login

from .context import COOKIE, Bench
from .report import at_most
from .stack import portal, portal_config, simulators_process
from .users import Users, failed, summary

FULL_PEOPLE = (10, 100, 1000)
QUICK_PEOPLE = (5, 30)
INTERVAL = 15.0
TTL = 20
BOARD = (
    "/api/v1/projects",
    "/api/v1/tasks",
    "/api/v1/userstories",
    "/api/v1/issues",
    "/api/v1/milestones",
    "/api/v1/users",
)


def realm_with(people: int, directory: Path) -> Path:
    """The test realm with `people` more users (user0001, ...), as a file for the provider."""
    realm: dict[str, Any] = json.loads((SIM_DIR / "realm.json").read_text(encoding="utf-8"))
    template = realm["users"][1]
    realm["users"] += [
        {
            **template,
            "username": f"user{n:04d}",
            "password": f"pw-user{n:04d}",
            "sub": str(uuid.UUID(int=n)),
            "email": f"user{n:04d}@example.org",
            "given_name": "User",
            "family_name": f"{n:04d}",
        }
        for n in range(1, people + 1)
    ]
    path = directory / f"realm-{people}.json"
    path.write_text(json.dumps(realm), encoding="utf-8")
    return path


@contextmanager
def crowd(directory: Path, people: int) -> Iterator[str]:
    """The simulators in a process of their own, Taiga holding `people` people; yields Taiga's URL."""
    with simulators_process(directory, "taiga-sim", "--taiga-people", str(people)) as urls:
        yield urls["taiga"]


def cookie_of(base: str, number: int, tries: int = 3) -> str:
    """A session of user<number>, logged in through the provider's form (tried again if refused)."""
    for attempt in range(1, tries + 1):
        try:
            return _login(base, number)
        except (RuntimeError, requests.RequestException, AssertionError):
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


def _login(base: str, number: int) -> str:
    browser = requests.Session()
    trip = start_login(browser, base)
    authenticate(browser, trip, f"user{number:04d}", f"pw-user{number:04d}")
    assert trip.callback_url, "the provider did not send the browser back"
    page = browser.get(trip.callback_url, timeout=30)
    value = browser.cookies.get(COOKIE)
    if page.status_code != 200 or not value:
        raise RuntimeError(f"login of user{number:04d} failed: {page.status_code}")
    return f"{COOKIE}={value}"


def measure(bench: Bench) -> None:
    counts = QUICK_PEOPLE if bench.quick else FULL_PEOPLE
    results: dict[int, dict[str, Any]] = {}
    seconds = bench.durations.amplification
    section = "2b Taiga load"
    most = max(counts)
    keycloak = KeycloakSim(bench.directory, realm_file=realm_with(most, bench.directory)).start()
    # Hour-long access tokens: a thousand sessions refreshing at Keycloak (the soak measures
    # that) would hold the request threads and say nothing about Taiga.
    keycloak.mode(ttl={"AccessToken": 3600})
    try:
        with crowd(bench.directory, most) as taiga_url:
            for people in counts:
                config = portal_config(bench.sim.url, keycloak.url, bench.redis.url)
                config["cache"]["key_prefix"] = f"bench-taiga-{people}-{uuid.uuid4().hex[:6]}:"
                config["upstreams"]["taiga"] = {
                    "url": f"{taiga_url}/api/v1/",
                    "timeout": 10,
                    "page_size": 1000,
                    "max_bytes": 20_000_000,
                }
                for slug in ("tasks", "deadlines"):
                    config["widgets"][slug] = {"ttl": TTL, "refresh": 30}
                env = {
                    "PORTAL_TAIGA_USERNAME": SERVICE_ACCOUNT[0],
                    "PORTAL_TAIGA_PASSWORD": SERVICE_ACCOUNT[2],
                }
                with portal(config, bench.directory, env) as server:
                    with ThreadPoolExecutor(8) as pool:
                        cookies = list(pool.map(lambda n: cookie_of(server.url, n), range(1, people + 1)))
                    requests.post(f"{taiga_url}/_sim/reset", timeout=5)
                    samples = Users(
                        server.url, cookies, ["/widgets/tasks", "/widgets/deadlines"], people, INTERVAL
                    ).run_for(seconds)
                    calls: dict[str, int] = requests.get(f"{taiga_url}/_sim/calls", timeout=5).json()["paths"]
                board_reads = calls.get("/api/v1/projects", 0)
                total = sum(calls.values())
                periods = seconds / TTL
                results[people] = {
                    "calls": total,
                    "per_period": round(total / periods, 2),
                    "board_reads": board_reads,
                    "by_path": calls,
                    "requests": summary(samples),
                    "errors": failed(samples),
                }
    finally:
        keycloak.stop()
    # With people polling, the board is read again in the last fifth of its TTL (refreshed ahead,
    # so no poll finds it expired): a read every 16 s of a 20 s TTL, 8 reads in 120 s.
    limit = math.floor(seconds / (TTL * (1 - REFRESH_AHEAD))) + 1
    per_read = max(
        1,
        sum(results[counts[0]]["by_path"].get(p, 0) for p in BOARD)
        // max(1, results[counts[0]]["board_reads"]),
    )
    low = min(r["calls"] for r in results.values())
    high = max(r["calls"] for r in results.values())
    bench.add(
        section,
        f"Taiga calls per cache period ({TTL} s), {' / '.join(str(n) for n in counts)} people, {seconds:g} s",
        " / ".join(f"{r['per_period']:g}" for r in results.values()),
        "the same (± one board read)",
        high - low <= per_read + 2,
    )
    bench.add(
        section,
        "board reads per run (each person's cards cut from them)",
        " / ".join(str(r["board_reads"]) for r in results.values()),
        f"≤ {limit} each",
        all(at_most(r["board_reads"], limit) for r in results.values()),
    )
    errors = sum(r["errors"] for r in results.values())
    bench.add(
        section,
        "requests / errors",
        " / ".join(str(r["requests"]["requests"]) for r in results.values()) + f" / {errors}",
        "0 errors",
        errors == 0,
    )
    bench.details["taiga"] = {"people": list(counts), "seconds": seconds, "ttl_s": TTL, "results": results}
