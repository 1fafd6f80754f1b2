"""1 and 2. The capacity of one pod, and the upstreams' load against the number of people.

One dashboard stack (bench/dashboard.py: the chart's 2 workers and 8 threads, Redis, every
upstream at 50-300 ms, the real Prometheus and Alertmanager) and one crowd (bench/people.py)
that grows step by step: at each step more people arrive over `ramp` seconds, each loading the
six cards and then polling each at its refresh; after `settle` seconds a window of `window`
seconds is measured. A step passes when the p99 of every card's endpoint is under 250 ms and
no request failed (a status other than 200 and 204, or no answer within 10 s): the capacity is
the largest step that passed.

A poll that finds a part past its TTL waits for the upstream (up to `answer_within`), so at
50-300 ms per upstream call some polls take that long whatever the number of people. To tell
that wait from the pod running out of CPU, each poll carries an X-Request-ID and the portal's
log says how each part was served: the polls whose every part was a cache hit show the pod's
own time. The ladder goes on until a step has failures, or the p99 of those polls passes 1 s
(4 × the goal: the pod is saturated; a step over the goal but under that may be a passing load
on the machine, and the next steps still say where the pod stands).

In each window: the workers' CPU (/proc, every thread) per person per minute, the generator's
own CPU, and the calls each upstream received per minute (counted by each simulator; by the
real Prometheus itself, from its own metrics; the real Alertmanager counts none of its API
calls, so it is left out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from . import chart
from .context import Bench
from .dashboard import CARDS, Dashboard, dashboard, process_cpu
from .host import cpu_times, steal_share
from .monitoring import calls_between
from .people import Crowd, cache_sources, from_cache
from .pipelines import gitlab_calls
from .report import at_least, at_most
from .users import Sample, summary

P99_GOAL_MS = 250.0
PEOPLE_GOAL = 2000
SECTION_1 = "1 capacity"
SECTION_2 = "2 upstream load"
SHARED_SLACK = 1.25  # "independent of N": within 25 % (+ 2 calls) of the count at the fewest people


@dataclass(frozen=True)
class Plan:
    steps: tuple[int, ...]  # people in the crowd at each step (it only grows)
    counted: tuple[int, ...]  # the steps figure 2 reports
    ramp: float  # s over which a step's newcomers arrive
    settle: float  # s after the ramp before the window
    window: float  # s measured
    counted_window: float  # s measured at the steps figure 2 reports (4-6 TTLs: a boundary more or less)
    refresh: int | None = None  # every card's refresh and TTL (--quick), else the configured ones


FULL = Plan(
    steps=(50, 200, 1000, 1500, 2000, 2500, 3000, 4000),
    counted=(50, 200, 1000),
    ramp=30,
    settle=15,
    window=60,
    counted_window=120,
)
QUICK = Plan(steps=(5, 15), counted=(5, 15), ramp=2, settle=1, window=5, counted_window=5, refresh=5)


def plan_of(bench: Bench) -> Plan:
    return QUICK if bench.quick else FULL


@dataclass
class Step:
    people: int
    samples: list[Sample]
    seconds: float
    worker_cpu: float
    generator_cpu: float
    calls: dict[str, dict[str, int]]
    cached: list[Sample]  # the polls answered from the cache alone
    steal: float = 0.0  # share of the machine's CPU the host took during the window (bench/host.py)

    def failures(self) -> int:
        return sum(1 for s in self.samples if s.status not in (200, 204))

    def p99(self, cached: bool = False) -> dict[str, float]:
        """p99 (ms) of each card's polls; of those answered from the cache alone when `cached`."""
        samples = self.cached if cached else self.samples
        return {f"/widgets/{slug}": _p99(samples, f"/widgets/{slug}") for slug in CARDS}

    def passed(self) -> bool:
        return self.failures() == 0 and all(p < P99_GOAL_MS for p in self.p99().values())

    def keeps_up(self) -> bool:
        """No failure, and the polls the cache answered alone within the goal: the pod keeps up."""
        return self.failures() == 0 and all(p < P99_GOAL_MS for p in self.p99(cached=True).values())

    def saturated(self) -> bool:
        """Failures, or the cache's own answers 4 × over the goal: no use adding people."""
        return self.failures() > 0 or any(p > 4 * P99_GOAL_MS for p in self.p99(cached=True).values())

    def waited(self) -> float:
        """The share of polls that waited for an upstream (a part not a cache hit)."""
        return 1 - len(self.cached) / len(self.samples) if self.samples else 0.0

    def cpu_ms_per_person_minute(self) -> float:
        return self.worker_cpu * 1000 / self.people / (self.seconds / 60)


def measure(bench: Bench) -> int:
    """Figures 1 and 2; returns the people one pod holds, for the writes and the soak."""
    plan = plan_of(bench)
    steps: list[Step] = []
    with dashboard(bench, max(plan.steps), refresh=plan.refresh, busy_team=True) as board:
        crowd = Crowd(board.server.url, board.cards(), connections=64).start()
        try:
            for people in plan.steps:
                step = _step(bench, board, crowd, people, plan)
                steps.append(step)
                print(
                    f"[bench]   {people} people: p99 {step.p99()}, from the cache {step.p99(cached=True)}, "
                    f"failures {step.failures()}",
                    flush=True,
                )
                if step.saturated():
                    break
        finally:
            crowd.stop()
    capacity = max((s.people for s in steps if s.passed()), default=0)
    _capacity_figures(bench, steps, capacity, plan)
    _upstream_figures(bench, [s for s in steps if s.people in plan.counted], board)
    # The writes and the soak run at half of it: of the pod's own capacity when the strict one
    # is smaller (the upstreams' latency alone can keep the strict one at 0).
    return max(capacity, max((s.people for s in steps if s.keeps_up()), default=0))


def _step(bench: Bench, board: Dashboard, crowd: Crowd, people: int, plan: Plan) -> Step:
    cookies = board.login(people)
    crowd.join(cookies[len(crowd.people) :], plan.ramp)
    crowd.wait_until(crowd.now() + plan.ramp + plan.settle)
    workers = board.server.workers()
    board.reset_counts()
    prometheus = bench.monitoring.api_calls() if bench.monitoring else {}
    cpu = sum(process_cpu(pid) for pid in workers)
    generator = crowd.thread_cpu()
    host = cpu_times()
    start = crowd.now()
    crowd.wait_until(start + (plan.counted_window if people in plan.counted else plan.window))
    end = crowd.now()
    cpu = sum(process_cpu(pid) for pid in workers) - cpu
    generator = crowd.thread_cpu() - generator
    steal = steal_share(host, cpu_times())
    calls = board.calls()
    if bench.monitoring:
        calls["prometheus"] = calls_between(prometheus, bench.monitoring.api_calls())
    crowd.drain(end)  # the window's last polls answered (or timed out)
    time.sleep(0.5)  # the portal's log lines are written every 0.1 s
    samples = crowd.window(start, end)
    cached = from_cache(samples, cache_sources(board.server.log))
    return Step(people, samples, end - start, cpu, generator, calls, cached, steal)


def _p99(samples: list[Sample], path: str) -> float:
    return float(summary(samples, path)["p99_ms"])  # type: ignore[arg-type]


def _capacity_figures(bench: Bench, steps: list[Step], capacity: int, plan: Plan) -> None:
    goal = PEOPLE_GOAL if not bench.quick else plan.steps[-1]
    ladder = ", ".join(f"{s.people} {'pass' if s.passed() else 'miss'}" for s in steps)
    bench.add(
        SECTION_1,
        f"people per pod, six cards each (p99 of every card < {P99_GOAL_MS:g} ms, no failure)",
        f"{capacity:,} ({ladder})",
        f"≥ {goal:,}",
        at_least(capacity, goal),
    )
    keeps_up = max((s.people for s in steps if s.keeps_up()), default=0)
    bench.add(
        SECTION_1,
        "people per pod, by the pod's own time (p99 of the polls answered from the cache)",
        f"{keeps_up:,}",
    )
    for step in steps:
        worst = max(step.p99().items(), key=lambda item: item[1])
        cached = max(step.p99(cached=True).items(), key=lambda item: item[1])
        rate = len(step.samples) / step.seconds
        bench.add(
            SECTION_1,
            f"{step.people:,} people: req/s; worst p99; from the cache; waited for an upstream; failures; "
            "CPU the host took",
            f"{rate:,.0f}; {_card(worst)}; {_card(cached)}; {step.waited():.1%}; {step.failures()}; "
            f"{step.steal:.1%}",
        )
    at_capacity = next((s for s in steps if s.people == capacity), steps[-1] if steps else None)
    if at_capacity is not None:
        bench.add(
            SECTION_1,
            f"worker CPU per person per minute (at {at_capacity.people:,})",
            f"{at_capacity.cpu_ms_per_person_minute():.1f} ms "
            f"(the two workers together {at_capacity.worker_cpu / at_capacity.seconds:.0%} of a core; "
            f"the generator {at_capacity.generator_cpu / at_capacity.seconds:.0%})",
        )
        limit = chart.cpu_limit()
        bench.add(
            SECTION_1,
            f"people the chart's CPU limit holds at that cost (resources.limits.cpu: {limit})",
            f"{chart.people_within(at_capacity.cpu_ms_per_person_minute(), limit):,}",
        )
    bench.details["capacity"] = {
        "plan": plan.__dict__,
        "capacity": capacity,
        "steps": [
            {
                "people": s.people,
                "seconds": round(s.seconds, 1),
                "passed": s.passed(),
                "failures": s.failures(),
                "p99_ms": s.p99(),
                "p99_ms_from_cache": s.p99(cached=True),
                "waited_for_upstream": round(s.waited(), 4),
                "cards": {f"/widgets/{slug}": summary(s.samples, f"/widgets/{slug}") for slug in CARDS},
                "worker_cpu_s": round(s.worker_cpu, 2),
                "generator_cpu_s": round(s.generator_cpu, 2),
                "cpu_ms_per_person_minute": round(s.cpu_ms_per_person_minute(), 2),
                "host_steal": round(s.steal, 4),
            }
            for s in steps
        ],
    }


def _card(item: tuple[str, float]) -> str:
    return f"{item[0].removeprefix('/widgets/')} {item[1]:.0f} ms"


def per_minute(calls: dict[str, dict[str, int]], seconds: float) -> dict[str, float]:
    """Calls per minute to each upstream; GitLab's split by whom they serve (projects, Mine, details)."""
    found: dict[str, float] = {}
    for upstream, paths in calls.items():
        if upstream == "gitlab":
            for kind, count in gitlab_calls(paths).items():
                if kind != "other":
                    found[f"gitlab {kind}"] = count * 60 / seconds
        else:
            found[upstream] = sum(paths.values()) * 60 / seconds
    return found


def _upstream_figures(bench: Bench, steps: list[Step], board: Dashboard) -> None:
    if not steps:
        return
    rows = [(s.people, per_minute(s.calls, s.seconds)) for s in steps]
    who = " / ".join(f"{people:,}" for people, _ in rows)
    first = rows[0][1]
    for name in first:
        values = [row.get(name, 0.0) for _, row in rows]
        limit = SHARED_SLACK * values[0] + 2
        goal = f"≤ {limit:.0f} (independent of N)" if name != "gitlab details" else ""
        bench.add(
            SECTION_2,
            f"{name} calls per minute, at {who} people",
            " / ".join(f"{v:.0f}" for v in values),
            goal,
            None if not goal else all(at_most(v, limit) for v in values) and values[0] > 0,
        )
    bench.details["upstream_load"] = {
        "people": [people for people, _ in rows],
        "per_minute": {str(people): row for people, row in rows},
        "calls": {str(s.people): s.calls for s in steps},
        "window_s": [round(s.seconds, 1) for s in steps],
    }
