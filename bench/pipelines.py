"""2. Upstream amplification of the pipelines card: GitLab calls per cache period, by number of users.

`USERS` threads poll `/widgets/pipelines` every 15 s (as bench/users.py does), sharing the
sessions of 1, then a few, then many different people (each logged in through the provider),
against 2 workers sharing Redis and the GitLab simulator (its own process). The simulator counts
its calls by path, sorted here by who they are for (`gitlab_calls`):

- *Projects*, shared: each configured project and its pipelines list. Goal: the same at every
  number of people, at most `PROJECT_CALLS` per project per cache period;
- *Mine*, shared since 2026-12-03: each project's latest pipelines and its open merge requests,
  read once for everyone and cut per person on the server (it was a person's pipelines in each
  project and their two merge-request lists, per person). Goal: the same at every number of
  people, at most `MINE_CALLS` per cache period;
- details (a pipeline's or a merge request's), shared and kept under their status: reported.

A cache period is the TTL; a run of `seconds` has `seconds / TTL` of them (plus the first fetch,
hence the limits' `(ceil(seconds / TTL) + 1) / (seconds / TTL)` slack).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from simulators.gitlab import TOKEN
from tests.support.keycloak import extra_user

from .context import Bench, session_cookie
from .report import at_most
from .stack import Simulator, portal, simulators_process
from .users import Users, failed

INTERVAL = 15.0
WORKERS = 2
PROJECTS = ("platform/portal", "platform/infra", "apps/billing")
# One fetch of a project: the project, its recent pipelines, and (when the default branch has
# none among them) that branch's latest one.
PROJECT_CALLS = 3
MINE_CALLS = 2 * len(PROJECTS)  # for everyone: a project's latest pipelines and its open merge requests
SECTION = "2 amplification"


@dataclass(frozen=True)
class Plan:
    threads: int  # polling browsers
    people: tuple[int, ...]  # different people among them, one run each
    seconds: float  # each run
    ttl: int  # the card's cache period


FULL = Plan(threads=200, people=(1, 20, 200), seconds=80, ttl=20)
QUICK = Plan(threads=20, people=(1, 3, 6), seconds=12, ttl=4)


def gitlab_calls(paths: Mapping[str, int]) -> dict[str, int]:
    """The simulator's calls by path, sorted: projects (shared), mine (per person), details.

    The card reads a project and its pipelines by the project's numeric id once it knows it
    (`/projects/101/pipelines`), and what Mine is cut from by the configured path
    (`/projects/platform%2Fportal/pipelines`, `.../merge_requests`): the path tells them apart.
    """
    found = {"projects": 0, "mine": 0, "details": 0, "other": 0}
    for path, count in paths.items():
        if not path.startswith("/api/v4/"):
            continue
        if re.fullmatch(r"/api/v4/projects/[^/]+/(pipelines|merge_requests)/\d+", path):
            found["details"] += count
        elif re.fullmatch(r"/api/v4/projects/[^/]+", path) or re.fullmatch(
            r"/api/v4/projects/\d+/pipelines", path
        ):
            found["projects"] += count
        elif path == "/api/v4/merge_requests" or re.fullmatch(
            r"/api/v4/projects/[^/]*%2F[^/]*/(pipelines|merge_requests)", path
        ):
            found["mine"] += count
        else:
            found["other"] += count
    return found


@contextmanager
def gitlab_simulator(bench: Bench) -> Iterator[Simulator]:
    """The GitLab simulator in a process of its own (with the others, unused)."""
    with simulators_process(bench.directory, "gitlab-sim", "--gitlab-port", "0") as urls:
        yield Simulator(urls["gitlab"])


def measure(bench: Bench) -> None:
    plan = QUICK if bench.quick else FULL
    periods = plan.seconds / plan.ttl
    slack = (math.ceil(plan.seconds / plan.ttl) + 1) / periods
    rows: list[tuple[int, dict[str, int], int, int]] = []
    with gitlab_simulator(bench) as forge:
        config = bench.config()
        config["upstreams"]["gitlab"] = {"url": forge.url, "timeout": 4}
        config["widgets"]["pipelines"].update(projects=list(PROJECTS), ttl=plan.ttl, refresh=int(INTERVAL))
        config["cache"]["key_prefix"] = f"bench-pipelines-{id(config)}:"
        env = {"PORTAL_WORKERS": str(WORKERS), "PORTAL_GITLAB_TOKEN": TOKEN}
        with portal(config, bench.directory, env) as server:
            logged_in: list[str] = []
            for people in plan.people:
                while len(logged_in) < people:
                    logged_in.append(session_cookie(server.url, extra_user(len(logged_in))))
                forge.reset()
                users = Users(server.url, logged_in[:people], ["/widgets/pipelines"], plan.threads, INTERVAL)
                samples = users.run_for(plan.seconds)
                rows.append((people, gitlab_calls(forge.calls()), len(samples), failed(samples)))
    projects = [calls["projects"] / periods for _, calls, _, _ in rows]
    mine = [calls["mine"] / periods for _, calls, _, _ in rows]
    details = [calls["details"] / periods for _, calls, _, _ in rows]
    who = " / ".join(str(people) for people, *_ in rows)
    project_limit = len(PROJECTS) * PROJECT_CALLS * slack
    mine_limit = MINE_CALLS * slack
    per = f"per {plan.ttl} s cache period, {plan.threads} polling"
    bench.add(
        SECTION,
        f"GitLab calls {per}, Projects (shared), at {who} people",
        " / ".join(f"{n:.1f}" for n in projects),
        f"≤ {project_limit:.1f} at every count",
        all(at_most(n, project_limit) for n in projects),
    )
    bench.add(
        SECTION,
        f"GitLab calls {per}, Mine (shared), at {who} people",
        " / ".join(f"{n:.1f}" for n in mine),
        f"≤ {mine_limit:.1f} at every count",
        all(at_most(n, mine_limit) for n in mine),
    )
    bench.add(SECTION, f"GitLab detail calls {per}, at {who} people", " / ".join(f"{n:.1f}" for n in details))
    errors = sum(bad for *_, bad in rows)
    bench.add(
        SECTION,
        "pipelines: requests / errors",
        f"{sum(n for *_, n, _ in rows)} / {errors}",
        "0 errors",
        errors == 0,
    )
    bench.details["amplification_pipelines"] = {
        "threads": plan.threads,
        "seconds": plan.seconds,
        "ttl_s": plan.ttl,
        "runs": [
            {"people": people, "calls": calls, "requests": n, "errors": bad} for people, calls, n, bad in rows
        ],
    }
