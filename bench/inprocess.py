"""`python -m bench.inprocess`: µs per cached widget poll in one thread, the portal's and the ceiling's.

No gunicorn and no wrk: the app is built as a worker builds it (the bench's configuration,
single sign-on, Redis) and called as a WSGI application, with the environ of a logged-in
poll, a few thousand times. The figure moves by about ±2 µs, so it shows a change of 5 µs or
more within seconds. Under load a µs saved here is worth about 1.5 µs of a worker's CPU
(`python -m bench.cpu`): caches and the GIL's hand-overs between eight threads.

`--clock cpu` counts the process's CPU time (every thread of it, the log writer's too) instead
of the wall clock: on a machine busy with other work, a comparison of two builds stays fair.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml
from werkzeug.test import EnvironBuilder

from tests.support.keycloak import CLIENT_SECRET

from .context import Bench, session_cookie
from .stack import SECRET_KEY, gunicorn, peers
from .throughput import WIDGET
from .wire import BROWSER_HEADERS

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def per_call(
    app: WsgiApp,
    environ: dict[str, Any],
    calls: int,
    rounds: int = 3,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, bytes, str]:
    """(best µs per call over `rounds`, the body, the status) of calling `app` with a copy of `environ`."""
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        status[:] = [line]

    def call() -> bytes:
        answer = app(dict(environ), start_response)
        body = b"".join(answer)
        close = getattr(answer, "close", None)
        if close is not None:
            close()
        return body

    body = b""
    for _ in range(300):  # warm-up: memos filled, code paths hot
        body = call()
    best = float("inf")
    for _ in range(rounds):
        began = clock()
        for _ in range(calls):
            call()
        best = min(best, (clock() - began) / calls * 1e6)
    return best, body, status[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--calls", type=int, default=5000, help="calls per round (the best round counts)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="cpu: the process CPU time")
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    with tempfile.TemporaryDirectory(prefix="portal-inprocess-") as tmp, peers(Path(tmp)) as peer:
        directory = Path(tmp)
        sim, keycloak, redis = peer
        assert redis is not None
        bench = Bench(directory, False, sim, keycloak, redis)
        config = directory / "portal.yaml"
        config.write_text(yaml.safe_dump(bench.config(True)), encoding="utf-8")
        env = {
            "PORTAL_CONFIG": str(config),
            "PORTAL_SECRET_KEY": SECRET_KEY,
            "PORTAL_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        }
        with gunicorn("portal.wsgi:app", directory, env, "login") as server:
            cookie = session_cookie(server.url)  # through the provider's form, as a person logs in
        metrics = directory / "metrics"
        metrics.mkdir()
        # Before prometheus_client is imported: the samples go to files, as under gunicorn.
        os.environ.update(env, PROMETHEUS_MULTIPROC_DIR=str(metrics))
        from portal import create_app  # noqa: PLC0415 - after the environment is set

        portal = create_app()
        with open(os.devnull, "w") as devnull:
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(devnull)  # the lines are still formatted and queued
            headers = [*BROWSER_HEADERS.items(), ("Cookie", cookie), ("HX-Request", "true")]
            environ = EnvironBuilder(
                path=WIDGET, headers=headers, base_url="http://127.0.0.1:8000"
            ).get_environ()
            portal_us, fragment, status = per_call(portal, environ, args.calls, args.rounds, clock)
            if not status.startswith("200"):
                raise SystemExit(f"the widget answered {status}, not 200")
            body = directory / "fragment.bin"
            body.write_bytes(fragment)
            os.environ["BENCH_FRAGMENT"] = str(body)
            from .ceiling import app as ceiling  # noqa: PLC0415 - reads BENCH_FRAGMENT on import

            ceiling_environ = EnvironBuilder(path="/fragment", headers=headers).get_environ()
            ceiling_us, _, _ = per_call(ceiling, ceiling_environ, args.calls, args.rounds, clock)
    print(f"portal : {portal_us:4.0f} µs per cached poll, one thread, no server ({args.clock} clock)")
    print(f"ceiling: {ceiling_us:4.0f} µs per call of the same fragment")


if __name__ == "__main__":
    main()
