"""The demo (`python -m demo`) in a child process on a free loopback port, for scripts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """Stop a child started with start_new_session=True, and all it started: TERM to the child
    alone, which stops what it started in order (gunicorn's master its workers, the demo its
    gunicorn), then KILL to its whole group if it has not exited after `grace` seconds.

    A TERM to the whole group reached gunicorn's workers before a busy master: they exited, the
    master started new ones, and its own stop then waited for them.
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace)


@contextmanager
def running_demo(timeout: float = 60.0, ports: Mapping[str, int] | None = None) -> Iterator[str]:
    """Start the demo (simulators and the portal under gunicorn); yield its base URL.

    `ports`: more of the demo's port variables, such as the simulators' (`DEMO_KUMA_PORT`), for
    a script that switches their faults on (`POST /_sim/fault`).
    """
    port = free_port()
    chosen = {name: str(value) for name, value in (ports or {}).items()}
    process = subprocess.Popen(
        [sys.executable, "-m", "demo"],
        cwd=ROOT,
        env={**os.environ, **chosen, "DEMO_PORT": str(port), "DEMO_HOST": "127.0.0.1"},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the demo did not start")
            time.sleep(0.2)
        yield base
    finally:
        stop_group(process)
