"""4. The fault matrix under load: 5 upstreams × 7 faults, then Redis killed and restarted.

The dashboard stack (bench/dashboard.py) with the Prometheus and Alertmanager simulators, every
card refreshed every 5 s with a 3 s TTL, a 2 s upstream timeout and a short breaker backoff, so
that each card retries during a fault, says so early and recovers quickly after it. `PEOPLE`
people poll the six cards (in English: the words are checked) throughout. Each upstream in turn
is switched to each fault for a window, then back; the cards are waited for until fresh again.

Per cell, goals: no portal 5xx (nor a dropped connection); the cards that read the upstream
state the fault in words, naming the upstream; they show their last good data, stale; the other
cards unaffected (only fresh answers, none failed); the portal's log holds the fault with the
upstream's name; and the whole log holds no secret (the session key, the OIDC client secret,
the GitLab token, Taiga's password, a session cookie).

`--quick` runs seven cells: each fault once, the upstreams in turn.
"""

from __future__ import annotations

import json
from typing import Any

from portal.upstreams.http import (
    ANSWERED_STATUS,
    NOT_JSON,
    REFUSED_CREDENTIALS,
    REFUSED_WITHOUT_CREDENTIALS,
    TIMED_OUT,
    TOO_LARGE,
    TOO_SLOW,
    UNREACHABLE,
)
from portal.widgets.pipelines.client import PROJECT_FORBIDDEN
from portal.widgets.taiga.client import SERVICE_ACCOUNT_REFUSED
from simulators.gitlab import TOKEN
from simulators.taiga import SERVICE_ACCOUNT
from tests.support.keycloak import CLIENT_SECRET

from .context import Bench
from .dashboard import LABELS, READERS, UPSTREAMS, Dashboard, dashboard
from .people import Crowd
from .stack import SECRET_KEY
from .users import card_words, server_errors

SECTION = "4 faults"
PEOPLE = 30
REFRESH = 5
TTL = 3
UPSTREAM = {"timeout": 2, "breaker_backoff": 2, "breaker_backoff_max": 4}


# Each fault: the simulator's mode and options, and what the card says (any of these).
FAULTS: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    "hang": ("timeout", {"seconds": 120}, (card_words(TIMED_OUT),)),
    "refused": ("refused", {}, (card_words(UNREACHABLE),)),
    "5xx": ("error500", {}, (card_words(ANSWERED_STATUS, status=500),)),
    # A 403 for GitLab and Alertmanager (FORBIDDEN), a 401 for the others; "asks for a login"
    # where the portal sends no credentials (Uptime Kuma's public API).
    "401/403": (
        "unauthorized",
        {},
        (
            card_words(REFUSED_CREDENTIALS, status=401),
            card_words(REFUSED_CREDENTIALS, status=403),
            card_words(REFUSED_WITHOUT_CREDENTIALS, status=401),
            card_words(REFUSED_WITHOUT_CREDENTIALS, status=403),
            card_words(PROJECT_FORBIDDEN),
            card_words(SERVICE_ACCOUNT_REFUSED),  # Taiga: its login refused too, then the card says so
        ),
    ),
    "malformed JSON": ("garbage", {}, (card_words(NOT_JSON),)),
    "oversized body": ("oversize", {"size": 21_000_000}, (card_words(TOO_LARGE),)),
    "slow drip": ("slow", {}, (card_words(TOO_SLOW), card_words(TIMED_OUT))),
}
FORBIDDEN = ("gitlab", "alertmanager")  # their 401/403 cell is a 403; the others' a 401


def cells(quick: bool) -> list[tuple[str, str]]:
    """(upstream, fault) pairs: all of them, or each fault once with the upstreams in turn."""
    if quick:
        return [(UPSTREAMS[i % len(UPSTREAMS)], fault) for i, fault in enumerate(FAULTS)]
    return [(upstream, fault) for upstream in UPSTREAMS for fault in FAULTS]


def secrets(cookies: list[str]) -> list[str]:
    """What the log must never hold."""
    values = [SECRET_KEY, CLIENT_SECRET, TOKEN, SERVICE_ACCOUNT[2]]
    return values + [cookie.split("=", 1)[1] for cookie in cookies]


def measure(bench: Bench) -> None:
    seconds = bench.durations.fault
    rows: list[dict[str, Any]] = []
    with dashboard(
        bench, PEOPLE, real_monitoring=False, refresh=REFRESH, ttl=TTL, upstream=UPSTREAM
    ) as board:
        cookies = board.login(PEOPLE)
        crowd = Crowd(board.server.url, board.cards(), connections=16, keep_bodies=True).start()
        try:
            crowd.join(cookies, REFRESH)
            for upstream, fault in cells(bench.quick):
                board.wait_all_ok(cookies[0])
                rows.append(_cell(board, crowd, upstream, fault, seconds))
            board.wait_all_ok(cookies[0])
            redis = _redis_restart(bench, crowd)
        finally:
            crowd.stop()
        log = board.server.log.read_text(encoding="utf-8", errors="replace")
    leaked = [value[:4] + "…" for value in secrets(cookies) if value and value in log]
    _figures(bench, rows, redis, leaked, seconds)


def _cell(board: Dashboard, crowd: Crowd, upstream: str, fault: str, seconds: float) -> dict[str, Any]:
    mode, options, words = FAULTS[fault]
    if fault == "401/403" and upstream in FORBIDDEN:
        mode = "forbidden"
    if mode == "refused":
        options = {"seconds": seconds}
    log_before = board.server.log.stat().st_size
    start = crowd.now()
    board.sims[upstream].fault(mode, **options)
    crowd.wait_until(start + seconds)
    if mode != "refused":  # (a closed port opens again by itself)
        board.sims[upstream].fault("none")
    end = crowd.now()
    crowd.drain(end)  # the answers to the window's polls
    readers = {f"/widgets/{slug}" for slug in READERS[upstream]}
    during = crowd.window(start, end)
    bodies = [
        (path, body) for at, path, _, body in list(crowd.bodies) if start <= at < end and path in readers
    ]
    label = LABELS[upstream].encode()
    stating = {
        path: sum(
            1 for p, body in bodies if p == path and label in body and any(w.encode() in body for w in words)
        )
        for path in sorted(readers)
    }
    stale = sum(1 for s in during if s.path in readers and s.state == "stale")
    others = [s for s in during if s.path not in readers]
    bad = [s for s in others if s.status not in (200, 204) or s.state not in ("ok", "unchanged")]
    disturbed = len(bad)
    with board.server.log.open("rb") as handle:
        handle.seek(log_before)
        logged = _logged(handle.read().decode("utf-8", "replace"), upstream)
    return {
        "upstream": upstream,
        "fault": fault,
        "mode": mode,
        "requests": len(during),
        "server_errors": server_errors(during),
        "stating": stating,
        "stale": stale,
        "others": len(others),
        "others_disturbed": disturbed,
        "disturbed": sorted({f"{s.path} {s.status} {s.state}" for s in bad}),
        "logged": logged,
    }


def _logged(text: str, upstream: str) -> int:
    """The log lines of failed calls to `upstream` (with its name)."""
    found = 0
    for line in text.splitlines():
        if '"upstream_error"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found += record.get("event") == "upstream_error" and record.get("upstream") == upstream
    return found


def _redis_restart(bench: Bench, crowd: Crowd) -> dict[str, int]:
    """Redis stopped (SIGTERM) and started again, empty, on the same port, under the same load."""
    start = crowd.now()
    bench.redis.stop()
    crowd.wait_until(start + bench.durations.redis_down)
    bench.redis.start()
    crowd.wait_until(crowd.now() + bench.durations.redis_down)
    during = crowd.window(start, crowd.now())
    return {
        "requests": len(during),
        "server_errors": server_errors(during),
        "logged_out": sum(1 for s in during if s.status == 401),
    }


def _figures(
    bench: Bench, rows: list[dict[str, Any]], redis: dict[str, int], leaked: list[str], seconds: float
) -> None:
    def cell_passed(row: dict[str, Any]) -> bool:
        return (
            row["server_errors"] == 0
            and all(n > 0 for n in row["stating"].values())
            and row["stale"] > 0
            and row["others_disturbed"] == 0
            and row["logged"] > 0
        )

    for row in rows:
        stating = ", ".join(f"{p.removeprefix('/widgets/')} {n}" for p, n in row["stating"].items())
        bench.add(
            SECTION,
            f"{LABELS[row['upstream']]}, {row['fault']}: 5xx; stating it ({stating}); stale; "
            "others disturbed; log lines",
            f"{row['server_errors']}; {min(row['stating'].values())}; {row['stale']}; "
            f"{row['others_disturbed']} of {row['others']}; {row['logged']}",
            "0; > 0; > 0; 0; > 0",
            cell_passed(row),
        )
    passed = sum(1 for row in rows if cell_passed(row))
    bench.add(
        SECTION,
        f"cells meeting every goal ({seconds:g} s each)",
        f"{passed} / {len(rows)}",
        "all",
        passed == len(rows),
    )
    bench.add(
        SECTION,
        "secrets in the portal's log (session key, client secret, tokens, password, cookies)",
        str(len(leaked)),
        "0",
        not leaked,
    )
    bench.add(
        SECTION,
        "Redis killed and restarted: 5xx",
        str(redis["server_errors"]),
        "0",
        redis["server_errors"] == 0,
    )
    bench.add(SECTION, "Redis restarted empty: polls sent to the login (401)", str(redis["logged_out"]))
    bench.details["faults"] = {"window_s": seconds, "cells": rows, "redis": redis, "leaked": leaked}
