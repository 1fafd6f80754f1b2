"""`python -m simulators`: run every upstream simulator on fixed loopback ports until stopped."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from . import gitlab, uptime_kuma


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators")
    parser.add_argument("--kuma-port", type=int, default=18101)
    parser.add_argument("--gitlab-port", type=int, default=None, help="also run the GitLab simulator")
    args = parser.parse_args()
    kuma, _ = uptime_kuma.make_server(port=args.kuma_port)
    kuma.start()
    print(f"Uptime Kuma simulator on {kuma.url}", flush=True)
    forge = None
    if args.gitlab_port is not None:
        forge, _ = gitlab.make_server(port=args.gitlab_port)
        forge.start()
        print(f"GitLab simulator on {forge.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    kuma.stop()
    if forge is not None:
        forge.stop()


if __name__ == "__main__":
    main()
