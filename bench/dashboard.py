"""The whole dashboard as a pod runs it: six cards over five upstreams, and people to open it.

`dashboard(bench, people)` starts, on free loopback ports and stopped by PID:

- the simulators in two processes of their own (Uptime Kuma, Taiga holding up to 1,000 people,
  the Prometheus and Alertmanager simulators in one; GitLab, the busiest, in the other), every
  one answering after a delay drawn between 50 and 300 ms (`/_sim/latency`); with `busy_team`,
  a task of Taiga's board moves every `TEAM_MOVES_EVERY` seconds, as a team at work moves its
  tasks along (the board read for everyone differs at each read);
- a Keycloak-shaped provider whose realm holds the same people (user0001, ...);
- the portal under the project's gunicorn.conf.py (the chart's 2 workers and 8 threads), with
  Redis and the example configuration's six cards at their configured refresh and TTL.

The metrics and incidents cards read the real Prometheus and Alertmanager (bench/monitoring.py)
unless `real_monitoring=False`: then the simulators', so that faults can be injected there too.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import requests

from simulators.gitlab import TOKEN
from simulators.taiga import SERVICE_ACCOUNT
from tests.support.keycloak import KeycloakSim

from .context import Bench
from .people import Card
from .stack import Server, Simulator, portal, portal_config, simulators_process
from .taiga_load import cookie_of, realm_with

CARDS = ("tasks", "deadlines", "status", "metrics", "incidents", "pipelines")
LATENCY = (0.05, 0.3)  # seconds: each simulated answer waits a time drawn in this range
# Taiga holds at most this many of the people (one task, one story and one issue each, in ten
# projects): its board is then the same at every step of figure 1, as figure 2 compares, and of a
# size a large team has (a board read is 5.5 MB of JSON with 1,000 people, 22 MB with 4,000; 4.3
# and 17 MB before the issues were read). Beyond
# them, people are not in Taiga: their tasks and deadlines cards say so, cut from the same board.
TAIGA_PEOPLE = 1000
# A busy team: a task moves every 5 s, whatever the number of people (about six moves a day for
# each of 1,000 people, one every two minutes for each of 50). Figures 1, 2 and 7.
TEAM_MOVES_EVERY = 5.0
PROJECTS = ("platform/portal", "platform/infra", "apps/billing")  # the GitLab demo's projects
UPSTREAMS = ("taiga", "prometheus", "alertmanager", "gitlab", "uptime_kuma")
LABELS = {
    "taiga": "Taiga",
    "prometheus": "Prometheus",
    "alertmanager": "Alertmanager",
    "gitlab": "GitLab",
    "uptime_kuma": "Uptime Kuma",
}
# The cards that read each upstream (the incidents card reads Alertmanager besides Prometheus).
READERS = {
    "taiga": ("tasks", "deadlines"),
    "prometheus": ("metrics", "incidents"),
    "alertmanager": ("incidents",),
    "gitlab": ("pipelines",),
    "uptime_kuma": ("status",),
}


class PortalSlot:
    """The dashboard's portal, which can be stopped and started again (`Dashboard.cold_restart`)."""

    def __init__(self, config: dict[str, Any], directory: Path, env: dict[str, str]) -> None:
        self.config, self.directory, self.env = config, directory, env
        self._running: ExitStack | None = None

    def start(self) -> Server:
        self._running = ExitStack()
        return self._running.enter_context(portal(self.config, self.directory, self.env))

    def stop(self) -> None:
        if self._running is not None:
            self._running.close()
            self._running = None


# What a pod has cached in Redis: the cards' data and the failure records. The sessions
# ("auth:") stay, so the people stay logged in across a cold restart.
CACHED = ("widget:*", "failure:*")


@dataclass
class Dashboard:
    """The running stack: the portal, each upstream's simulator controls, the people's logins."""

    server: Server
    config: dict[str, Any]
    sims: dict[str, Simulator]  # by upstream; the monitoring ones only without real monitoring
    keycloak: KeycloakSim
    slot: PortalSlot
    redis_url: str
    cookies: list[str] = field(default_factory=list)

    def cold_restart(self) -> None:
        """The portal as a cold pod: stopped, every cached answer and failure record deleted
        from Redis (the sessions kept), and started again, on a new port (`server.url`)."""
        self.slot.stop()
        prefix = self.config["cache"]["key_prefix"]
        client = redis.Redis.from_url(self.redis_url)
        try:
            for pattern in CACHED:
                keys = list(client.scan_iter(match=prefix + pattern, count=1000))
                if keys:
                    client.delete(*keys)
        finally:
            client.close()
        self.server = self.slot.start()

    def cards(self) -> list[Card]:
        """The six cards at their configured refresh."""
        widgets = self.config["widgets"]
        return [Card(f"/widgets/{slug}", float(widgets[slug]["refresh"])) for slug in CARDS]

    def timeout(self, upstream: str) -> float:
        return float(self.config["upstreams"][upstream]["timeout"])

    def login(self, count: int) -> list[str]:
        """Sessions of the first `count` people, each logged in through the provider's form."""
        missing = range(len(self.cookies) + 1, count + 1)
        if missing:
            with ThreadPoolExecutor(8) as pool:
                self.cookies += list(pool.map(lambda n: cookie_of(self.server.url, n), missing))
        return self.cookies[:count]

    def realistic(self) -> None:
        """Every simulator back to normal, answering in 50-300 ms."""
        for sim in self.sims.values():
            sim.reset()
            sim.latency(LATENCY[0], LATENCY[1])

    def wait_all_ok(self, cookie: str, limit: float = 300.0) -> float:
        """Until every card shows fresh data again (the breakers closed, the failures forgotten).

        Returns the seconds it took. A breaker's pause doubles after each failed retry (up to
        `breaker_backoff_max`): after a long fault the first retry may come a while later.
        """
        began = time.monotonic()
        deadline = began + limit
        waiting = list(CARDS)
        while waiting and time.monotonic() < deadline:
            headers = {"Cookie": cookie, "HX-Request": "true", "Accept-Language": "en"}
            answer = requests.get(f"{self.server.url}/widgets/{waiting[0]}", headers=headers, timeout=15)
            if b'class="widget-content is-ok"' in answer.content:
                waiting.pop(0)
            else:
                time.sleep(0.5)
        if waiting:
            raise TimeoutError(f"the cards {', '.join(waiting)} did not come back after a fault")
        return time.monotonic() - began

    def calls(self) -> dict[str, dict[str, int]]:
        """Each simulator's calls by path since its last reset."""
        return {name: sim.calls() for name, sim in self.sims.items()}

    def reset_counts(self) -> None:
        """Counts from zero (and every simulator back to normal)."""
        self.realistic()


@contextmanager
def dashboard(
    bench: Bench,
    people: int,
    real_monitoring: bool = True,
    refresh: int | None = None,
    upstream: dict[str, Any] | None = None,
    ttl: int | None = None,
    busy_team: bool = False,
) -> Iterator[Dashboard]:
    """The stack for up to `people` people (module docstring).

    `refresh`: every card's refresh and TTL (`ttl` when given) instead of the configured ones;
    `upstream`: settings given to every upstream (a shorter timeout, a shorter breaker backoff);
    `busy_team`: Taiga's tasks move as a team at work moves them (`TEAM_MOVES_EVERY`).
    """
    with ExitStack() as stack:
        crowd: tuple[str, ...] = ("--taiga-people", str(min(people, TAIGA_PEOPLE)))
        if busy_team:
            crowd += ("--taiga-moves-every", str(TEAM_MOVES_EVERY))
        urls = stack.enter_context(simulators_process(bench.directory, "sims", *crowd))
        gitlab = stack.enter_context(simulators_process(bench.directory, "gitlab-sim", "--gitlab-port", "0"))
        urls["gitlab"] = gitlab["gitlab"]
        sims = {name: Simulator(url) for name, url in urls.items()}
        monitoring = bench.monitoring.urls() if real_monitoring and bench.monitoring else None
        if monitoring:
            sims.pop("prometheus")
            sims.pop("alertmanager")
        keycloak = KeycloakSim(bench.directory, realm_file=realm_with(people, bench.directory)).start()
        stack.callback(keycloak.stop)
        # Hour-long access tokens: the people log in within minutes of each other, and their
        # refreshes, all due together, would measure the bench's logins rather than a pod.
        keycloak.mode(ttl={"AccessToken": 3600})
        config = _config(bench, urls, monitoring, keycloak.url)
        for name in UPSTREAMS:
            config["upstreams"][name].update(upstream or {})
        if refresh:
            for slug in CARDS:
                config["widgets"][slug].update(refresh=refresh, ttl=ttl or refresh)
        env = {
            "PORTAL_GITLAB_TOKEN": TOKEN,
            "PORTAL_TAIGA_USERNAME": SERVICE_ACCOUNT[0],
            "PORTAL_TAIGA_PASSWORD": SERVICE_ACCOUNT[2],
        }
        slot = PortalSlot(config, bench.directory, env)
        stack.callback(slot.stop)
        board = Dashboard(slot.start(), config, sims, keycloak, slot, bench.redis.url)
        board.realistic()
        yield board


def _config(
    bench: Bench, urls: dict[str, str], monitoring: dict[str, str] | None, keycloak_url: str
) -> dict[str, Any]:
    """The example configuration, every upstream a simulator (or the real monitoring)."""
    config = portal_config(
        urls["uptime_kuma"],
        keycloak_url,
        bench.redis.url,
        monitoring or {"prometheus": urls["prometheus"], "alertmanager": urls["alertmanager"]},
    )
    config["cache"]["key_prefix"] = f"bench-dashboard-{uuid.uuid4().hex[:8]}:"
    config["database"] = {"data_dir": str(bench.directory / f"data-{uuid.uuid4().hex[:6]}")}
    config["upstreams"]["gitlab"] = {"url": urls["gitlab"], "timeout": 5}
    # Taiga holds every simulated person: its board is a few MB, read in pages of 1,000.
    config["upstreams"]["taiga"] = {
        "url": f"{urls['taiga']}/api/v1/",
        "timeout": 8,
        "page_size": 1000,
        "max_bytes": 20_000_000,
    }
    config["widgets"]["pipelines"]["projects"] = list(PROJECTS)
    os.makedirs(config["database"]["data_dir"], exist_ok=True)
    return config


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far, its finished threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
