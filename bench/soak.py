"""6. Soak: half the measured maximum rate on the widget for a long while; errors and worker memory.

The rate is paced with wrk's delay() hook: each of 16 connections waits between requests so
that together they send about half the rate the throughput figure reached. One wrk run covers
the warm-up and the soak; each worker's RSS is read from /proc after the warm-up, every 30 s
and just before the end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .context import Bench, session_cookie
from .report import at_most
from .wire import BROWSER_HEADERS, fetch
from .wrk import run, start

CARD = "/widgets/status"
CONNECTIONS = 16
# Keycloak's access tokens live 5 min; the first refresh would come 270 s in, after the
# warm-up, and the one-time set-up it costs a worker (OIDC client, discovery, keys: ~8 MiB)
# would read as growth. 12 s tokens are refreshed every ~10 s, by either worker: both have
# refreshed several times before the first reading, and refreshes go on all through the soak.
ACCESS_TOKEN_SECONDS = 12
GROWTH_GOAL = 0.10
SAMPLE_EVERY = 30.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def bad_log_lines(text: str) -> int:
    """Lines at ERROR or worse, and lines that are not JSON (Loki could not parse them)."""
    bad = 0
    for line in text.splitlines():
        try:
            level = json.loads(line).get("level")
        except (ValueError, AttributeError):
            bad += 1
            continue
        bad += level in ("ERROR", "CRITICAL")
    return bad


def measure(bench: Bench, max_rps: float) -> None:
    target = max(20.0, max_rps / 2)
    warmup, soak_seconds = bench.durations.soak_warmup, bench.durations.soak
    bench.keycloak.mode(ttl={"AccessToken": ACCESS_TOKEN_SECONDS})
    try:
        _soak(bench, target, warmup, soak_seconds)
    finally:
        bench.keycloak.reset()  # Keycloak's lifetimes again


def _soak(bench: Bench, target: float, warmup: float, soak_seconds: float) -> None:
    with bench.portal(redis=True) as server:
        cookie = session_cookie(server.url)
        headers = {**BROWSER_HEADERS, "Cookie": cookie, "HX-Request": "true"}
        fetch(server.url + CARD, headers)
        # A short paced run tells how long a request takes at that pace, beyond its delay (the
        # mean, from the rate it held: the p50 leaves out the slow tail and the rate fell short).
        probe_delay_ms = CONNECTIONS * 1000 / target
        probe = run(server.url + CARD, 5, headers, CONNECTIONS, delay_ms=probe_delay_ms)
        beyond_ms = max(0.0, CONNECTIONS * 1000 / max(probe.rps, 1.0) - probe_delay_ms)
        delay_ms = max(0.0, CONNECTIONS * 1000 / target - beyond_ms)
        # One run: the warm-up is its beginning, so connections (and the load on each worker)
        # stay the same between the two memory readings.
        running = start(server.url + CARD, warmup + soak_seconds, headers, CONNECTIONS, delay_ms=delay_ms)
        time.sleep(warmup)
        tokens_before = bench.keycloak.count("/token")
        workers = server.workers()
        before = {pid: rss_kib(pid) for pid in workers}
        curve: list[dict[int, int]] = []
        end = time.monotonic() + soak_seconds - 2  # the last reading while the load still runs
        while time.monotonic() < end:
            time.sleep(min(SAMPLE_EVERY, max(0.0, end - time.monotonic())))
            curve.append({pid: rss_kib(pid) for pid in workers})
        after = curve[-1] if curve else {pid: rss_kib(pid) for pid in workers}
        soak = running.finish()
        refreshes = bench.keycloak.count("/token") - tokens_before
        log_errors = bad_log_lines(server.log.read_text())
    section = "6 soak"
    bench.add(
        section,
        f"rate held for {warmup:g} + {soak_seconds:g} s (target {target:,.0f} req/s)",
        f"{soak.rps:,.0f} req/s",
    )
    errors = soak.errors + probe.errors
    bench.add(
        section,
        "errors (non-200/204, socket errors) / ERROR or non-JSON log lines",
        f"{errors} / {log_errors}",
        "0 / 0",
        errors == 0 and log_errors == 0,
    )
    refreshed = f"token refreshes after the warm-up ({ACCESS_TOKEN_SECONDS} s access tokens)"
    bench.add(section, refreshed, str(refreshes))
    growths = {pid: (after[pid] - before[pid]) / before[pid] for pid in workers if before[pid]}
    worst = max(growths.values(), default=0.0)
    sizes = ", ".join(f"{before[pid] / 1024:.0f}→{after[pid] / 1024:.0f} MiB" for pid in workers)
    bench.add(
        section,
        f"worker RSS growth after the {warmup:g} s warm-up (worst)",
        f"{worst:+.1%} ({sizes})",
        "≤ +10 %",
        at_most(worst, GROWTH_GOAL),
    )
    bench.details["soak"] = {
        "target_rps": target,
        "delay_ms": delay_ms,
        "probe": probe.as_dict(),
        "soak": soak.as_dict(),
        "rss_kib_after_warmup": before,
        "rss_kib_every_30s": curve,
        "error_log_lines": log_errors,
        "token_refreshes_after_warmup": refreshes,
    }
