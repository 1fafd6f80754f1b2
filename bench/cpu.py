"""`python -m bench.cpu`: the CPU one worker spends per request, the portal's and the ceiling's.

A rate on two shared cores moves by several per cent between runs, and with two workers wrk's
connections sometimes pile onto one (see throughput.best_of). With one worker (gunicorn's other
settings unchanged) and wrk on the other core, the worker's CPU time (every thread of it, read
from /proc) divided by the requests it answered is a steadier measure of what a request costs.
It is how the changes to the hot path were compared (bench/README.md § Profiling).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from .context import Bench, session_cookie
from .host import cpu_seconds
from .stack import Server, gunicorn, peers
from .throughput import SENT_BACK, WIDGET
from .wire import BROWSER_HEADERS, fetch
from .wrk import run

ONE_WORKER = {"PORTAL_WORKERS": "1"}


def per_request(
    server: Server, url: str, headers: dict[str, str], seconds: float, follow: tuple[str, ...] = ()
) -> tuple[float, float, dict[str, int]]:
    """(µs of worker CPU per answered request, requests per second, statuses) over one wrk run."""
    (worker,) = server.workers()
    run(url, 2, headers, follow=follow)  # warm-up
    before = cpu_seconds(worker)
    result = run(url, seconds, headers, follow=follow)
    spent = cpu_seconds(worker) - before
    answered = sum(result.statuses.values())
    return spent / max(answered, 1) * 1e6, result.rps, result.statuses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__)
    parser.add_argument("--seconds", type=float, default=8, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=2, help="runs of each, alternating")
    parser.add_argument(
        "--no-redis",
        action="store_true",
        help="the portal without Redis (the chart's default): the pod's cache",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="portal-cpu-") as tmp, peers(Path(tmp)) as (sim, keycloak, redis):
        assert redis is not None  # started with the peers; with --no-redis the portal leaves it alone
        bench = Bench(Path(tmp), False, sim, keycloak, redis)
        with bench.portal(redis=not args.no_redis, env=ONE_WORKER) as portal:
            headers = {**BROWSER_HEADERS, "Cookie": session_cookie(portal.url), "HX-Request": "true"}
            fragment = fetch(portal.url + WIDGET, headers)
            body = Path(tmp) / "fragment.bin"
            body.write_bytes(fetch(portal.url + WIDGET, headers).body)
            ceiling_env = {
                **ONE_WORKER,
                "BENCH_FRAGMENT": str(body),
                "BENCH_FRAGMENT_ENCODING": fragment.headers.get("content-encoding", ""),
            }
            shown = fetch(portal.url + WIDGET, headers).headers
            polling = {**headers, **{name: shown[name.lower()] for name in SENT_BACK}}
            with gunicorn("bench.ceiling:app", Path(tmp), ceiling_env, "ceiling") as ceiling:
                for _ in range(args.runs):
                    for name, server, url, sent, follow in (
                        ("portal ", portal, portal.url + WIDGET, headers, ()),
                        ("poll   ", portal, portal.url + WIDGET, polling, SENT_BACK),
                        ("ceiling", ceiling, ceiling.url + "/fragment", headers, ()),
                    ):
                        cpu, rps, statuses = per_request(server, url, sent, args.seconds, follow)
                        counts = ", ".join(f"{n:,} {status}" for status, n in sorted(statuses.items()))
                        rate = f"{rps:,.0f} req/s, 1 worker; {counts}"
                        print(f"{name}: {cpu:4.0f} µs of worker CPU per request ({rate})")


if __name__ == "__main__":
    main()
