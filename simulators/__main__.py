"""`python -m simulators`: run every upstream simulator on fixed loopback ports until stopped."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading

from . import uptime_kuma


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m simulators")
    parser.add_argument("--kuma-port", type=int, default=18101)
    args = parser.parse_args()
    kuma, _ = uptime_kuma.make_server(port=args.kuma_port)
    kuma.start()
    print(f"Uptime Kuma simulator on {kuma.url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    kuma.stop()


if __name__ == "__main__":
    main()
