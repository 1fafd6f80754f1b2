"""3. Isolation: each upstream in turn hangs while the others answer, under the whole dashboard.

The dashboard stack (bench/dashboard.py) with the Prometheus and Alertmanager simulators (so
that they can hang too), every card's refresh and TTL at 5 s so that each card retries during
the hang and gives many answers per window. `PEOPLE` people poll the six cards; 10 more load the
shell (`/`, no htmx headers) every second.

First two cold starts: each the same arrival of everyone at a cold pod (restarted, its cached
data deleted from Redis, the sessions kept), and a window of the same length measured once the
other cards' first fetches are done. The first is the control, with nothing hung; in the second
Uptime Kuma hangs before anyone arrives, so the status card (the one the page itself carries
when its data is cached) has nothing to show; then Uptime Kuma answers again and every card is
waited for until fresh. Then, for each upstream in turn: a window with nothing hung, then the
upstream hangs (the simulator accepts and says nothing) for a window of the same length, then
answers again and every card is waited for until it shows fresh data. (`--quick`: GitLab only.)
The baseline is the windows with nothing hung together (a path's p99 over five times the
answers, taken over the same minutes as the hangs); each of them against it is the noise,
reported beside the goals.

Goals, per hang: the p99 of the shell and of every card that does not read the hung upstream
within 1.2 × its baseline p99; the cards that read it answer within the upstream's timeout +
0.5 s, with their last good data marked stale (stale answers, no error). In the cold hang, which
has no last good data: the shell never waits for the hung fetch, from the first second (its
slowest answer under the upstream's timeout); the shell and the other cards within 1.2 × their
p99 in the control's window (the ratio to the warm baseline is reported beside it); and the
status card answers within `answer_within` + 0.5 s, saying it is loading and then that Uptime
Kuma did not answer (no 5xx).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .context import Bench
from .dashboard import CARDS, LABELS, READERS, UPSTREAMS, Dashboard, dashboard
from .people import Card, Crowd
from .report import at_most
from .stats import ratio
from .users import Sample, summary

SECTION = "3 isolation"
REFRESH = 5
GOAL = 1.2
SHELL = "/"
RECOVERY_LIMIT = 400  # s; a breaker's pause is at most 300 s
QUICK_UPSTREAMS = ("gitlab",)  # --quick: the upstream of the mixed card (shared and per-person parts)
COLD = "uptime_kuma"  # hung before anyone arrives: its card is the one the page carries when cached
COLD_STATES = ("loading", "error", "unchanged")  # nothing to show yet, then the failure in words


def _hangs(bench: Bench) -> tuple[str, ...]:
    """The upstreams that hang, in turn: all of them, GitLab alone with --quick, or those named
    in BENCH_HANGS (`BENCH_HANGS=uptime_kuma,gitlab`, to look at one or an order of them)."""
    named = tuple(name for name in os.environ.get("BENCH_HANGS", "").split(",") if name)
    unknown = set(named) - set(UPSTREAMS)
    if unknown:
        raise ValueError(f"BENCH_HANGS: unknown upstream(s) {', '.join(sorted(unknown))}")
    return named or (QUICK_UPSTREAMS if bench.quick else UPSTREAMS)


def _p99(samples: list[Sample], path: str) -> float:
    return float(summary(samples, path)["p99_ms"])  # type: ignore[arg-type]


def measure(bench: Bench) -> None:
    # Data stays current for its TTL + the upstream's timeout + 1 s while a refresh is under way:
    # a hang shows as stale after that. --quick: 2 s timeouts, a 4 s window (Durations).
    window, settled = bench.durations.hang, bench.durations.settled
    people = 10 if bench.quick else 100
    # --quick: a short breaker backoff too, or waiting for the cards to come back after the hang
    # (the breaker's first retry) takes most of the smoke run.
    settings = {"timeout": 2, "breaker_backoff": 2, "breaker_backoff_max": 4} if bench.quick else None
    with dashboard(bench, people, real_monitoring=False, refresh=REFRESH, upstream=settings) as board:
        cookies = board.login(people)
        # The cold hang's control: the same arrival at a cold pod, nothing hung; then the pod is
        # cold again for the cold hang itself. Both start from a restart: a new worker's first
        # pages take 1 to 2 s under this arrival whether anything hangs or not (measured with
        # and without the hang), where the portal the logins went through answers in 0.2 s.
        board.cold_restart()
        control = _cold_start(board, cookies, window, settled, hung=None)
        board.cold_restart()
        crowd = Crowd(board.server.url, board.cards(), connections=32).start()
        shell = Crowd(board.server.url, [Card(SHELL, 1.0)], connections=8, htmx=False).start()
        results: dict[str, Any] = {}
        quiet: dict[str, dict[str, list[Sample]]] = {}  # before each hang, nothing hung
        recovery: dict[str, float] = {}  # s from the hang's end until every card was fresh
        try:
            cold = _cold_start(board, cookies, window, settled, hung=COLD, crowd=crowd, shell=shell)
            for upstream in _hangs(bench):
                # A window with nothing hung just before each hang: the baseline is all of them
                # together, spread over the same minutes as the hangs (a worker's p99 drifts as
                # it fills: a single baseline at the start read 1.7 times lower than one 30 s
                # later, median over the paths, in the full run of 2026-12-03 16:21).
                start = crowd.now()
                crowd.wait_until(start + window)
                quiet[upstream] = _windows(crowd, shell, start, crowd.now())
                board.sims[upstream].fault("timeout", seconds=window + 60)
                start = crowd.now()
                crowd.wait_until(start + window)
                end = crowd.now()
                board.realistic()  # answering again
                crowd.drain(end)  # the window's last answers
                shell.drain(end + crowd.origin - shell.origin)
                results[upstream] = _windows(crowd, shell, start, end)
                # The next hang starts from a settled dashboard: every person's cards fresh again
                # (one person's is not enough: the others' own parts are still catching up).
                recovery[upstream] = crowd.now() - end + crowd.wait_all_fresh(RECOVERY_LIMIT)
        finally:
            crowd.stop()
            shell.stop()
    baseline = {
        path: [s for found in quiet.values() for s in found[path]] for path in next(iter(quiet.values()))
    }
    _cold_figures(bench, board, baseline, control, cold, settled)
    _noise(bench, baseline, quiet)
    _figures(bench, board, baseline, results, window)
    bench.add(
        SECTION,
        "after each hang, until every card was fresh again (s)",
        f"cold {LABELS[COLD]} {cold.recovery:.0f}, "
        + ", ".join(f"{LABELS[name]} {seconds:.0f}" for name, seconds in recovery.items()),
    )
    bench.details["isolation"]["recovery_s"] = recovery


@dataclass
class ColdStart:
    """People arriving at a cold pod: the shell while they join, then a window once settled."""

    joining: list[Sample]  # the shell's answers in the first `settled` seconds
    window: dict[str, list[Sample]]  # every path's answers in the window after that
    recovery: float  # s from the window's end until every card was fresh


def _cold_start(
    board: Dashboard,
    cookies: list[str],
    window: float,
    settled: float,
    hung: str | None,
    crowd: Crowd | None = None,
    shell: Crowd | None = None,
) -> ColdStart:
    """People arrive at the cold pod (with `hung` hanging from before the first of them), the
    window is measured once the other cards' first fetches are done, then every upstream
    answers and every card is waited for until fresh. Crowds not given are started and stopped
    here; those given go on polling."""
    own = crowd is None
    crowd = crowd or Crowd(board.server.url, board.cards(), connections=32).start()
    shell = shell or Crowd(board.server.url, [Card(SHELL, 1.0)], connections=8, htmx=False).start()
    try:
        if hung:
            board.sims[hung].fault("timeout", seconds=settled + window + 60)
        crowd.join(cookies, REFRESH)
        shell.join(cookies[:10], 1.0)
        crowd.wait_until(settled + window)
        end = crowd.now()
        board.realistic()
        crowd.drain(end)
        shell.drain(end + crowd.origin - shell.origin)
        found = _windows(crowd, shell, settled, end)
        joining = _windows(crowd, shell, 0.0, settled)[SHELL]
        recovery = crowd.now() - end + crowd.wait_all_fresh(RECOVERY_LIMIT)
    finally:
        if own:
            crowd.stop()
            shell.stop()
    return ColdStart(joining, found, recovery)


def _windows(crowd: Crowd, shell: Crowd, start: float, end: float) -> dict[str, list[Sample]]:
    """Every path's samples due in a window (the shell's clock is moved onto the crowd's)."""
    found = {f"/widgets/{slug}": crowd.window(start, end, f"/widgets/{slug}") for slug in CARDS}
    offset = shell.origin - crowd.origin
    found[SHELL] = [s for s in list(shell.samples) if start <= s.at + offset < end and s.path == SHELL]
    return found


def _cold_figures(
    bench: Bench,
    board: Dashboard,
    baseline: dict[str, list[Sample]],
    control: ColdStart,
    cold: ColdStart,
    settled: float,
) -> None:
    """The cold hang against the same cold start with nothing hung: nothing cached for the hung
    card, no thread held for it, nothing else slower."""
    label = LABELS[COLD]
    timeout = board.timeout(COLD)
    first = max((s.seconds for s in cold.joining), default=0.0)
    first_control = max((s.seconds for s in control.joining), default=0.0)
    bench.add(
        SECTION,
        f"cold: {label} hangs as people arrive: the shell's slowest answer in the first {settled:g} s",
        f"{first:.2f} s ({len(cold.joining)} pages; nothing hung: {first_control:.2f} s)",
        f"< {timeout:g} s (the upstream's timeout: never waits for the hung fetch)",
        bool(cold.joining) and first < timeout,
    )
    hung = {f"/widgets/{slug}" for slug in READERS[COLD]}
    others = [path for path in cold.window if path not in hung]
    ratios = {path: ratio(_p99(cold.window[path], path), _p99(control.window[path], path)) for path in others}
    worst = max(ratios.items(), key=lambda item: item[1])
    bench.add(
        SECTION,
        f"cold: {label} hangs: worst p99 of the shell and the other cards / a cold start, nothing hung",
        f"{worst[1]:.2f} ({worst[0]}: {_p99(cold.window[worst[0]], worst[0]):.0f} / "
        f"{_p99(control.window[worst[0]], worst[0]):.0f} ms)",
        f"≤ {GOAL}",
        all(at_most(value, GOAL) for value in ratios.values()),
    )
    warm = {path: ratio(_p99(cold.window[path], path), _p99(baseline[path], path)) for path in others}
    warm_worst = max(warm.items(), key=lambda item: item[1])
    control_warm = max(ratio(_p99(control.window[path], path), _p99(baseline[path], path)) for path in others)
    bench.add(
        SECTION,
        f"cold: {label} hangs: the same / the warm baseline, minutes later",
        f"{warm_worst[1]:.2f} ({warm_worst[0]}); a cold start with nothing hung: {control_warm:.2f}",
    )
    samples = [s for path in sorted(hung) for s in cold.window[path]]
    slowest = max((s.seconds for s in samples), default=0.0)
    limit = float(board.config["cache"]["answer_within"]) + 0.5
    states: dict[str, int] = {}
    for sample in samples:
        states[sample.state or str(sample.status)] = states.get(sample.state or str(sample.status), 0) + 1
    said = ", ".join(f"{state} {count}" for state, count in sorted(states.items()))
    bench.add(
        SECTION,
        f"cold: {label} hangs: {', '.join(sorted(p.removeprefix('/widgets/') for p in hung))}: "
        "slowest answer; what it showed",
        f"{slowest:.2f} s; {said}",
        f"≤ {limit:g} s (answer_within + 0.5); only {', '.join(COLD_STATES)}",
        bool(samples) and at_most(slowest, limit) and set(states) <= set(COLD_STATES),
    )
    bench.details["isolation_cold"] = {
        "upstream": COLD,
        "shell_while_joining": summary(cold.joining),
        "control_shell_while_joining": summary(control.joining),
        "ratios": ratios,
        "ratios_to_warm_baseline": warm,
        "hung": summary(samples),
        "others": {path: summary(cold.window[path]) for path in others},
        "control": {path: summary(found) for path, found in control.window.items()},
        "control_recovery_s": control.recovery,
    }


def _noise(
    bench: Bench, baseline: dict[str, list[Sample]], quiet: dict[str, dict[str, list[Sample]]]
) -> None:
    """Each window with nothing hung against the baseline they make together: how far a p99
    moves from one window to another when nothing hangs, the noise the ratios below stand in
    (on 2 cores shared with the crowd, a path's p99 is its sixth-slowest answer in a window)."""
    ratios = {
        (upstream, path): ratio(_p99(found[path], path), _p99(baseline[path], path))
        for upstream, found in quiet.items()
        for path in found
    }
    (upstream, path), highest = max(ratios.items(), key=lambda item: item[1])
    ordered = sorted(ratios.values())
    bench.add(
        SECTION,
        f"nothing hangs: the window before each hang ({len(quiet)}), worst p99 / baseline (the noise)",
        f"{highest:.2f} ({path}, before {LABELS[upstream]}: {_p99(quiet[upstream][path], path):.0f} / "
        f"{_p99(baseline[path], path):.0f} ms); median {ordered[len(ordered) // 2]:.2f}; "
        f"above {GOAL}: {sum(value > GOAL for value in ordered)} of {len(ordered)}",
    )
    bench.details.setdefault("isolation_noise", {})["ratios"] = {
        f"{upstream} {path}": value for (upstream, path), value in ratios.items()
    }


def _figures(
    bench: Bench,
    board: Dashboard,
    baseline: dict[str, list[Sample]],
    results: dict[str, dict[str, list[Sample]]],
    window: float,
) -> None:
    details: dict[str, Any] = {"window_s": window, "refresh_s": REFRESH, "baseline": {}}
    base = {path: _p99(samples, path) for path, samples in baseline.items()}
    details["baseline"] = {path: summary(samples) for path, samples in baseline.items()}
    for upstream, found in results.items():
        hung = {f"/widgets/{slug}" for slug in READERS[upstream]}
        others = [path for path in found if path not in hung]
        ratios = {path: ratio(_p99(found[path], path), base[path]) for path in others}
        worst = max(ratios.items(), key=lambda item: item[1])
        label = LABELS[upstream]
        bench.add(
            SECTION,
            f"{label} hangs: worst p99 of the shell and the other cards / baseline",
            f"{worst[1]:.2f} ({worst[0]}: {_p99(found[worst[0]], worst[0]):.0f} / {base[worst[0]]:.0f} ms)",
            f"≤ {GOAL}",
            all(at_most(value, GOAL) for value in ratios.values()),
        )
        hung_samples = [s for path in sorted(hung) for s in found[path]]
        slowest = max((s.seconds for s in hung_samples), default=0.0)
        limit = board.timeout(upstream) + 0.5
        stale = sum(1 for s in hung_samples if s.state == "stale")
        wrong = sum(1 for s in hung_samples if s.status not in (200, 204) or s.state == "error")
        cards = ", ".join(sorted(slug.removeprefix("/widgets/") for slug in hung))
        bench.add(
            SECTION,
            f"{label} hangs: {cards}: slowest answer; stale answers / errors",
            f"{slowest:.2f} s; {stale} / {wrong}",
            f"≤ {limit:g} s (timeout + 0.5); stale > 0, 0 errors",
            at_most(slowest, limit) and stale > 0 and wrong == 0,
        )
        details[upstream] = {
            "ratios": ratios,
            "hung": summary(hung_samples),
            "others": {path: summary(found[path]) for path in others},
        }
    bench.details["isolation"] = details
