"""4. Isolation: Uptime Kuma (the status widget's upstream) hangs while users keep polling.

Two windows of equal length under the same load: a baseline, then the upstream hanging (the
simulator accepts and says nothing). Measured in each: p99 of the shell (`/`) and of `/healthz`
(the status widget is the only one so far, so the shell and the probe stand for "the other
widgets": what a hung upstream must not slow down), and every answer of the hung card: its
slowest must come within the configured upstream timeout + 0.5 s, with its last good data
marked stale (it had some), never an error. A short TTL makes the card retry during the hang.
"""

from __future__ import annotations

from .context import Bench, session_cookies
from .report import at_most
from .stats import ratio
from .users import Sample, Users, summary

CARD = "/widgets/status"
SHELL = "/"
PROBE = "/healthz"
TTL = 5
GOAL = 1.2


def _window(samples: list[Sample], start: float, end: float) -> list[Sample]:
    return [s for s in samples if start <= s.at < end]


def measure(bench: Bench) -> None:
    window = bench.durations.hang
    with bench.portal(redis=True, ttl=TTL) as server:
        timeout = float(bench.config()["upstreams"]["uptime_kuma"]["timeout"])
        cookies = session_cookies(server.url, 6)
        cards = Users(server.url, cookies, [CARD], 40, 1.0)
        pages = Users(server.url, cookies, [SHELL, PROBE], 10, 0.5)
        cards.start()
        pages.start()
        try:
            # Warm up, then the baseline window, then the hang.
            cards.wait_until(3.0)
            start = cards.now()
            cards.wait_until(start + window)
            bench.sim.fault("timeout", seconds=window)
            hang_start = cards.now()
            cards.wait_until(hang_start + window)
            bench.sim.reset()
        finally:
            card_samples = cards.stop()
            page_samples = pages.stop()
    offset = pages.origin - cards.origin
    page_samples = [Sample(s.path, s.at + offset, s.seconds, s.status, s.state) for s in page_samples]
    section = "4 isolation"
    details: dict[str, object] = {"window_s": window, "ttl_s": TTL, "timeout_s": timeout}
    for path, label in ((SHELL, "shell /"), (PROBE, "/healthz")):
        before = summary(_window(page_samples, start, hang_start), path)
        during = summary(_window(page_samples, hang_start, hang_start + window), path)
        change = ratio(float(during["p99_ms"]), float(before["p99_ms"]))  # type: ignore[arg-type]
        bench.add(
            section,
            f"{label} p99 during the hang / baseline",
            f"{change:.2f} ({during['p99_ms']} / {before['p99_ms']} ms)",
            f"≤ {GOAL}",
            at_most(change, GOAL),
        )
        details[label] = {"baseline": before, "hang": during}
    hung = _window(card_samples, hang_start, hang_start + window)
    stats = summary(hung)
    slowest = float(stats["max_ms"]) / 1000  # type: ignore[arg-type]
    bench.add(
        section,
        "hung card: slowest answer",
        f"{slowest:.2f} s",
        f"≤ {timeout + 0.5:g} s (timeout + 0.5)",
        at_most(slowest, timeout + 0.5),
    )
    states = stats["states"]
    assert isinstance(states, dict)
    stale = states.get("stale", 0)
    wrong = states.get("error", 0) + sum(1 for s in hung if s.status not in (200, 204))
    bench.add(
        section,
        "hung card: stale answers / errors",
        f"{stale} / {wrong}",
        "stale > 0, 0 errors",
        stale > 0 and wrong == 0,
    )
    details["hung_card"] = stats
    details["baseline_card"] = summary(_window(card_samples, start, hang_start))
    bench.details["isolation"] = details
