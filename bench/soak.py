"""6. Soak: half the measured maximum rate on the widget for a long while; errors and worker memory.

The rate is paced with wrk's delay() hook: each of 16 connections waits between requests so
that together they send about half the rate the throughput figure reached. Each worker's RSS
is read from /proc after the warm-up and at the end.
"""

from __future__ import annotations

from pathlib import Path

from .context import Bench, session_cookie
from .report import at_most
from .wire import BROWSER_HEADERS, fetch
from .wrk import run

CARD = "/widgets/status"
CONNECTIONS = 16
GROWTH_GOAL = 0.10


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def measure(bench: Bench, max_rps: float) -> None:
    target = max(20.0, max_rps / 2)
    with bench.portal(redis=True) as server:
        cookie = session_cookie(server.url)
        headers = {**BROWSER_HEADERS, "Cookie": cookie, "HX-Request": "true"}
        fetch(server.url + CARD, headers)
        delay_ms = CONNECTIONS * 1000 / target
        warm = run(server.url + CARD, bench.durations.soak_warmup, headers, CONNECTIONS, delay_ms=delay_ms)
        # Pace on what the warm-up showed: each request also takes its own latency.
        delay_ms = max(0.0, CONNECTIONS * 1000 / target - warm.p50_ms)
        workers = server.workers()
        before = {pid: rss_kib(pid) for pid in workers}
        soak = run(server.url + CARD, bench.durations.soak, headers, CONNECTIONS, delay_ms=delay_ms)
        after = {pid: rss_kib(pid) for pid in workers}
        log_errors = sum(1 for line in server.log.read_text().splitlines() if '"level": "ERROR"' in line)
    section = "6 soak"
    seconds = bench.durations.soak
    bench.add(section, f"rate held for {seconds:g} s (target {target:,.0f} req/s)", f"{soak.rps:,.0f} req/s")
    errors = soak.errors + warm.errors
    bench.add(
        section,
        "errors (non-200/204, socket errors) / ERROR log lines",
        f"{errors} / {log_errors}",
        "0 / 0",
        errors == 0 and log_errors == 0,
    )
    growths = {pid: (after[pid] - before[pid]) / before[pid] for pid in workers if before[pid]}
    worst = max(growths.values(), default=0.0)
    sizes = ", ".join(f"{before[pid] // 1024}→{after[pid] // 1024} MiB" for pid in workers)
    bench.add(
        section,
        "worker RSS growth after warm-up (worst)",
        f"{worst:+.1%} ({sizes})",
        "≤ +10 %",
        at_most(worst, GROWTH_GOAL),
    )
    bench.details["soak"] = {
        "target_rps": target,
        "delay_ms": delay_ms,
        "warmup": warm.as_dict(),
        "soak": soak.as_dict(),
        "rss_kib_after_warmup": before,
        "rss_kib_at_end": after,
        "error_log_lines": log_errors,
    }
