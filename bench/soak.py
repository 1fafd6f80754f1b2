"""7. Soak: half of figure 1's people with the whole dashboard open, for 10 minutes.

The dashboard stack of figure 1 (bench/dashboard.py: configured refresh, the real Prometheus),
half of the people figure 1 found (at least `MIN_PEOPLE`) polling the six cards. After the
warm-up (`WARM_POLLS` polls of the slowest card: each worker has then served nearly every
person's every card once, and holds what a pod holds for them), and every 30 s until the end,
each worker's RSS, threads and open sockets are read from /proc. Goals: no failed poll and no
ERROR (or non-JSON) line in the portal's log; each worker's RSS at the end within +10 % of its
value after the warm-up; its threads not climbing (the median of the soak's last third no
higher than the highest of its first third), nor the sockets it opened itself, counted by the
peer at their far end (Redis, the provider, each upstream; see `grown_sockets`). The people's
connections to it are reported, not judged.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import chart
from .context import Bench
from .dashboard import dashboard
from .people import Crowd
from .report import at_most
from .users import Sample, failed

MIN_PEOPLE = 100
QUICK_PEOPLE = 10
# Polls of the slowest card before the soak is measured. A person's poll lands on either worker,
# and each worker builds that person's cards the first time it serves them: after 8 polls, each
# card a worker has never served is 1 in 256 (at 1,500 people, after the 90 s the warm-up was,
# a worker had built 3,064 of its 4,500 per-person views, and went on building them for
# minutes: growth that is the pod filling up, not leaking).
WARM_POLLS = 8
GROWTH_GOAL = 0.10
SAMPLE_EVERY = 30.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    """A process's proportional share of the memory it maps: pages shared with the other
    gunicorn processes (what the master loaded before forking) counted once across them."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
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


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _tcp_ports(pid: int, inodes: set[str]) -> list[tuple[int, int]]:
    """(local port, remote port) of each of the process's TCP sockets among `inodes`."""
    ports = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.append((int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16)))
    return ports


def threads_and_sockets(pid: int, served_port: int) -> tuple[int, int, int]:
    """A process's threads; the sockets it opened itself (to Redis, to the upstreams); and the
    connections it accepted on `served_port` (the listening socket among them): the people's
    keep-alive connections, which land on either worker as the crowd's pool opens them again."""
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
    inodes = _socket_inodes(pid)
    served = sum(local == served_port for local, _ in _tcp_ports(pid, inodes))
    return threads, len(inodes) - served, served


def peer_ports(config: dict[str, Any]) -> dict[int, str]:
    """The port of each peer the portal's configuration names: its upstreams, Redis, the provider."""
    urls = {name: upstream["url"] for name, upstream in config.get("upstreams", {}).items()}
    urls["redis"] = config.get("cache", {}).get("redis_url", "")
    urls["keycloak"] = config.get("auth", {}).get("oidc", {}).get("server_url", "")
    ports: dict[int, list[str]] = {}
    for name, url in urls.items():
        port = urlsplit(url).port if url else None
        if port:
            ports.setdefault(port, []).append(name)
    return {port: "+".join(sorted(names)) for port, names in ports.items()}


def sockets_by_peer(pid: int, served_port: int, peers: dict[int, str]) -> Counter[str]:
    """The sockets a process opened itself, by the peer at their far end ("other" for a TCP
    socket to a port no peer has, "listening", "not TCP" for the rest: Unix sockets, the metrics listener)."""
    inodes = _socket_inodes(pid)
    tcp = _tcp_ports(pid, inodes)
    counts = Counter(
        peers.get(remote, "listening" if remote == 0 else "other")
        for local, remote in tcp
        if local != served_port
    )
    not_tcp = len(inodes) - len(tcp)
    if not_tcp:
        counts["not TCP"] = not_tcp
    return counts


def measure(bench: Bench, capacity: int) -> None:
    people = max(QUICK_PEOPLE if bench.quick else MIN_PEOPLE, capacity // 2)
    seconds = bench.durations.soak
    refresh = 5 if bench.quick else None
    with dashboard(bench, people, refresh=refresh, busy_team=True) as board:
        cookies = board.login(people)
        cards = board.cards()
        warmup = bench.durations.soak_warmup
        if not bench.quick:
            warmup = max(warmup, WARM_POLLS * max(card.refresh for card in cards))
        crowd = Crowd(board.server.url, cards).start()
        try:
            crowd.join(cookies, min(30.0, warmup / 2))
            crowd.wait_until(warmup)
            start = crowd.now()
            workers = board.server.workers()
            port = int(board.server.url.rsplit(":", 1)[1])
            peers = peer_ports(board.config)
            curve: list[dict[int, tuple[int, int, int, int]]] = []
            by_peer: list[dict[int, Counter[str]]] = []
            end = start + seconds
            while True:
                curve.append({pid: (rss_kib(pid), *threads_and_sockets(pid, port)) for pid in workers})
                by_peer.append({pid: sockets_by_peer(pid, port, peers) for pid in workers})
                if crowd.now() >= end - 1:
                    break
                crowd.wait_until(min(end - 1, crowd.now() + (SAMPLE_EVERY if not bench.quick else 2)))
            pod = sum(pss_kib(pid) for pid in [board.server.master, *workers])
            samples = crowd.window(start, crowd.now())
        finally:
            crowd.stop()
        log_errors = bad_log_lines(board.server.log.read_text(encoding="utf-8", errors="replace"))
    _figures(bench, people, warmup, seconds, samples, curve, by_peer, log_errors)
    bench.details["soak"]["sockets_by_peer"] = [
        {str(pid): dict(counts) for pid, counts in reading.items()} for reading in by_peer
    ]
    bench.add(
        "7 soak",
        "the pod's memory at the end: master and workers (PSS, shared pages counted once)",
        f"{pod / 1024:.0f} MiB (the chart's limit: {chart.memory_limit()})",
    )
    bench.details["soak"]["pod_pss_kib"] = pod


def grown_sockets(by_peer: list[dict[int, Counter[str]]]) -> list[str]:
    """The peers to which a worker's sockets grew: the median of its last third of readings
    above the most any worker held to that peer in the first third.

    Both workers run the same code under the same load, and an HTTP or Redis pool opens one more
    connection the first time one more call overlaps: a worker reaching what its sibling held
    from the start is its pool reaching the pod's working size (a soak saw Taiga 1→2 in one
    worker, 8.5 minutes in, while the other held 2 throughout). A leak goes past it."""
    third = max(1, len(by_peer) // 3)
    peers = {peer for reading in by_peer for counts in reading.values() for peer in counts}
    grown = []
    for peer in sorted(peers):
        early = max(counts[peer] for reading in by_peer[:third] for counts in reading.values())
        for pid in by_peer[0]:
            late = statistics.median(reading[pid][peer] for reading in by_peer[-third:])
            if late > early:
                grown.append(f"{peer} (worker {pid}: {late:g} > {early})")
    return grown


def peer_changes(by_peer: list[dict[int, Counter[str]]]) -> str:
    """Per worker, the peers whose sockets changed in number between the first and last reading
    (what a growth in the sockets row is made of), or the counts when none changed."""
    first, last = by_peer[0], by_peer[-1]
    parts = []
    for pid in first:
        changed = [
            f"{peer} {first[pid][peer]}→{last[pid].get(peer, 0)}"
            for peer in sorted(set(first[pid]) | set(last[pid]))
            if first[pid][peer] != last[pid].get(peer, 0)
        ]
        unchanged = ", ".join(f"{peer} {n}" for peer, n in sorted(first[pid].items()))
        parts.append("; ".join(changed) if changed else f"unchanged ({unchanged})")
    return " | ".join(parts)


def _figures(
    bench: Bench,
    people: int,
    warmup: float,
    seconds: float,
    samples: list[Sample],
    curve: list[dict[int, tuple[int, int, int, int]]],
    by_peer: list[dict[int, Counter[str]]],
    log_errors: int,
) -> None:
    section = "7 soak"
    errors = failed(samples)
    bench.add(
        section,
        f"{people:,} people for {seconds:g} s after {warmup:g} s: failed polls / ERROR or non-JSON log lines",
        f"{errors} of {len(samples):,} / {log_errors}",
        "0 / 0",
        errors == 0 and log_errors == 0,
    )
    first, last = curve[0], curve[-1]
    growths = {pid: (last[pid][0] - first[pid][0]) / first[pid][0] for pid in first if first[pid][0]}
    worst = max(growths.values(), default=0.0)
    sizes = ", ".join(f"{first[pid][0] / 1024:.0f}→{last[pid][0] / 1024:.0f} MiB" for pid in first)
    bench.add(
        section,
        "worker RSS growth after the warm-up (worst)",
        f"{worst:+.1%} ({sizes})",
        "≤ +10 %",
        at_most(worst, GROWTH_GOAL),
    )
    # "No growth": a climb, not the ups and downs of a count (a fetch pool of the pipelines card
    # lives for one fetch: three threads more in one reading).
    third = max(1, len(curve) // 3)

    def counts(index: int) -> str:
        return ", ".join(
            f"{first[pid][index]}→{last[pid][index]} "
            f"({min(r[pid][index] for r in curve)}-{max(r[pid][index] for r in curve)})"
            for pid in first
        )

    grown_threads = [
        pid
        for pid in first
        if statistics.median(reading[pid][1] for reading in curve[-third:])
        > max(reading[pid][1] for reading in curve[:third])
    ]
    bench.add(
        section,
        "worker threads, after the warm-up → at the end (lowest-highest)",
        counts(1),
        "no growth: the last third's median ≤ the first third's highest",
        not grown_threads,
    )
    grown = grown_sockets(by_peer)
    bench.add(
        section,
        "worker sockets it opened (Redis, upstreams), after the warm-up → at the end (lowest-highest)",
        counts(2) + (f"; grown: {', '.join(grown)}" if grown else ""),
        "no growth: to each peer, the last third's median ≤ the most a worker held in the first third",
        not grown,
    )
    bench.add(section, "worker sockets by peer, after the warm-up → at the end", peer_changes(by_peer))
    # Not judged: how many of the people's keep-alive connections a worker holds is up to the
    # crowd's pool (closed when idle, opened again on either worker).
    bench.add(section, "worker connections from the people, after the warm-up → at the end", counts(3))
    bench.details["soak"] = {
        "people": people,
        "warmup_s": warmup,
        "seconds": seconds,
        "requests": len(samples),
        "failed": errors,
        "error_log_lines": log_errors,
        "curve_rss_kib_threads_own_sockets_served": [
            {str(pid): v for pid, v in reading.items()} for reading in curve
        ],
    }
