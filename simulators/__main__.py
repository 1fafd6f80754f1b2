"""`python -m simulators`: run every upstream simulator on loopback ports until stopped.

Port 0 lets the system pick a free one; `--ports-file` then says which, once every simulator
listens (JSON: each simulator's URL by name), for the process that started this one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import threading
from pathlib import Path

from . import gitlab, prometheus, taiga, uptime_kuma


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators")
    parser.add_argument("--kuma-port", type=int, default=18101)
    parser.add_argument("--gitlab-port", type=int, default=None, help="also run the GitLab simulator")
    parser.add_argument("--prometheus-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--alertmanager-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--taiga-port", type=int, default=18102)
    parser.add_argument("--taiga-people", type=int, default=0, help="a Taiga of this many people (bench)")
    parser.add_argument(
        "--taiga-moves-every", type=float, default=0.0, help="with --taiga-people: a task moves every N s"
    )
    parser.add_argument("--ports-file", type=Path, default=None, help="write every simulator's URL here")
    args = parser.parse_args()
    kuma, _ = uptime_kuma.make_server(port=args.kuma_port)
    kuma.start()
    prom, alertmanager, _ = prometheus.make_servers(
        prometheus_port=args.prometheus_port, alertmanager_port=args.alertmanager_port
    )
    prom.start()
    alertmanager.start()
    print(f"Uptime Kuma simulator on {kuma.url}", flush=True)
    forge = None
    if args.gitlab_port is not None:
        forge, _ = gitlab.make_server(port=args.gitlab_port)
        forge.start()
        print(f"GitLab simulator on {forge.url}", flush=True)
    print(f"Prometheus simulator on {prom.url}, Alertmanager simulator on {alertmanager.url}", flush=True)
    world = (
        taiga.crowd_world(args.taiga_people, moves_every=args.taiga_moves_every)
        if args.taiga_people
        else None
    )
    tracker, _ = taiga.make_server(world, port=args.taiga_port)
    tracker.start()
    print(f"Taiga simulator on {tracker.url}", flush=True)
    if args.ports_file is not None:
        urls = {"uptime_kuma": kuma.url, "prometheus": prom.url, "alertmanager": alertmanager.url}
        urls["taiga"] = tracker.url
        if forge is not None:
            urls["gitlab"] = forge.url
        partial = args.ports_file.with_suffix(".partial")
        partial.write_text(json.dumps(urls), encoding="utf-8")
        os.replace(partial, args.ports_file)  # whole or absent: the reader never sees half of it
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    kuma.stop()
    if forge is not None:
        forge.stop()
    prom.stop()
    alertmanager.stop()
    tracker.stop()


if __name__ == "__main__":
    main()
