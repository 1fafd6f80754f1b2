"""Start real processes for tests (Redis, the portal under gunicorn, other servers) and stop them by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml

from demo.running import stop_group

ROOT = Path(__file__).resolve().parents[2]


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback), and not one this process handed out
    before: two calls in a row could name the same port, nothing having bound the first yet (a
    portal's metrics port and its own port, once: "Address already in use")."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for(check: Any, timeout: float = 15.0, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}: {last}")


def eventually(check: Any, seconds: float = 5.0) -> bool:
    """True as soon as `check` is; messages between processes take a moment, never a fixed one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())


def start_child(
    command: list[str], log_file: Path, ready: Callable[[], object], what: str, timeout: float = 30
) -> subprocess.Popen[bytes]:
    """Start a server as a child process logging to `log_file`; return once `ready()` is true.

    If it is not ready in time it is stopped, and the error carries the end of its log.
    """
    with log_file.open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: process.poll() is None and ready(), timeout=timeout, what=what)
    except TimeoutError:
        stop_child(process)
        raise RuntimeError(f"{what} did not start ({process.returncode}):\n{log_tail(log_file)}") from None
    return process


def run_logged(
    command: list[str | Path],
    log_file: Path,
    what: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> None:
    """Run a command to its end, its output appended to `log_file`; fail with the log's end.

    Its stdin and stdout are no pipes of ours, so a daemon it leaves running holds none that
    we would wait on (such a daemon should keep only fds 0-2, as `close_fds` makes sure).
    """
    with log_file.open("ab") as out:
        done = subprocess.run(
            [str(part) for part in command],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{log_tail(log_file)}")


def log_tail(log_file: Path, size: int = 3000) -> str:
    """The end of a log, for an error message."""
    return log_file.read_text(errors="replace")[-size:]


def stop_child(process: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    """Stop a child process by its PID: SIGTERM, then SIGKILL after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(grace)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` is running (a zombie waiting for its parent counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process, but it exists
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def stop_pid(pid: int, first: signal.Signals = signal.SIGTERM, grace: float = 20.0) -> None:
    """Stop a daemon that is not our child by its PID: `first`, then SIGKILL after `grace` seconds."""
    for sig, wait in ((first, grace), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)
    raise RuntimeError(f"process {pid} did not stop")


class RedisServer:
    """A real redis-server on a free loopback port with a temporary directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test-deps`")
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        wait_for(client.ping, what="redis")
        client.close()
        return self

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections hang as with a dead node, nothing is lost."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT), with all it held."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.resume()
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def children(pid: int) -> set[int]:
    """The PIDs of the processes `pid` started (a gunicorn master's workers), from /proc."""
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def portal_env(
    config: dict[str, Any],
    directory: Path,
    port: int,
    workers: int = 1,
    threads: int = 8,
    extra_env: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the portal under gunicorn on `port`, its configuration written to `directory`."""
    config_file = directory / f"portal-{port}.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    return {
        **os.environ,
        "PORTAL_CONFIG": str(config_file),
        "PORTAL_SECRET_KEY": "test-secret-key-0123456789",
        "PORTAL_BIND": f"127.0.0.1:{port}",
        "PORTAL_WORKERS": str(workers),
        "PORTAL_THREADS": str(threads),
        "PORTAL_METRICS_BIND": "off",
        **(extra_env or {}),
    }


@contextmanager
def portal_process(
    config: dict[str, Any],
    directory: Path,
    workers: int = 1,
    threads: int = 8,
    extra_env: dict[str, str] | None = None,
    app_module: str = "portal.wsgi:app",
    port: int | None = None,
) -> Iterator[str]:
    """The portal under gunicorn with the project's gunicorn.conf.py; yields its base URL.

    `app_module` may name another WSGI app (a test app with a test-only widget); `port`, a port
    another portal used before (a release following another at the same address).
    """
    port = port or free_port()
    env = portal_env(config, directory, port, workers, threads, extra_env)
    log_file = directory / f"portal-{port}.log"
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), app_module]
    with served(command, cwd=ROOT, env=env, log_file=log_file, url=url):
        yield url


@contextmanager
def served(
    command: list[str], *, cwd: Path, env: dict[str, str], log_file: Path, url: str, timeout: float = 30
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server in a process group of its own, ready once `url`/readyz answers; stop it after."""
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(lambda: requests.get(f"{url}/readyz", timeout=1).ok, timeout=timeout, what=url)
    except TimeoutError:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(20)
        raise RuntimeError(f"{command[0]} did not start:\n{log_file.read_text()}") from None
    try:
        yield process
    finally:
        stop_group(process)
