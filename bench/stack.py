"""The processes a benchmark phase runs against: simulators, Keycloak, Redis, the portal, the ceiling.

Each runs as a child process on a free loopback port (the simulators too, so that the load
generator in this process does not share their interpreter), started and stopped by PID.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.support.keycloak import CLIENT_ID, CLIENT_SECRET, REALM, KeycloakSim
from tests.support.processes import ROOT, RedisServer, children, free_port, served, wait_for

SECRET_KEY = "bench-secret-key-0123456789abcdef"
PEOPLE = 200  # team members in the provider besides alice and bob (the pipelines figure logs them in)
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]
# What the image's ENV sets for the workers' memory (the Dockerfile's runtime stage; a test
# checks they agree): the bench measures the pod as it runs.
IMAGE_ENV = {"MALLOC_ARENA_MAX": "2"}


class Simulator:
    """A simulator of `python -m simulators` (Uptime Kuma's by default), driven over its /_sim/ controls."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _post(self, path: str, body: dict[str, Any]) -> None:
        requests.post(f"{self.url}/_sim/{path}", json=body, timeout=5).raise_for_status()

    def fault(self, mode: str, **options: Any) -> None:
        self._post("fault", {"mode": mode, **options})

    def reset(self) -> None:
        self._post("reset", {})

    def latency(self, seconds: float, most: float = 0.0) -> None:
        """Seconds added to every normal answer (drawn between `seconds` and `most` when given)."""
        self._post("latency", {"seconds": seconds, "max": most})

    def calls(self) -> dict[str, int]:
        """Requests received by path since the last reset."""
        paths: dict[str, int] = requests.get(f"{self.url}/_sim/calls", timeout=5).json()["paths"]
        return paths


@contextmanager
def simulators_process(directory: Path, what: str, *arguments: str) -> Iterator[dict[str, str]]:
    """`python -m simulators` in a process of its own, each simulator on a port the system picks
    as it binds (a port chosen beforehand may be taken by then); yields their URLs by name."""
    name = f"{what}-{uuid.uuid4().hex[:8]}"
    ports_file, log_path = directory / f"{name}.json", directory / f"{name}.log"
    ports = ("--kuma-port", "0", "--taiga-port", "0")  # unless `arguments` say otherwise (the last wins)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "simulators", *ports, "--ports-file", str(ports_file), *arguments],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: ports_file.exists() or process.poll() is not None, timeout=60, what=what)
        if not ports_file.exists():
            raise RuntimeError(f"{what} exited with {process.returncode}: see {log_path}")
        urls: dict[str, str] = json.loads(ports_file.read_text(encoding="utf-8"))
        yield urls
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def simulator(directory: Path) -> Iterator[Simulator]:
    """The Uptime Kuma simulator (with the others, unused)."""
    with simulators_process(directory, "sim") as urls:
        yield Simulator(urls["uptime_kuma"])


@dataclass
class Server:
    """A gunicorn master on a port; `workers()` are its children's PIDs."""

    url: str
    master: int
    log: Path

    def workers(self) -> list[int]:
        return sorted(children(self.master))


def portal_config(
    kuma_url: str,
    keycloak_url: str,
    redis_url: str | None,
    monitoring: dict[str, str] | None = None,
    **status: Any,
) -> dict[str, Any]:
    """The example configuration, with single sign-on against the provider and the simulator upstream.

    `monitoring`: the URLs of the real Prometheus and Alertmanager (bench/monitoring.py); without
    it the metrics and incidents cards are not configured.
    """
    config: dict[str, Any] = yaml.safe_load((ROOT / "portal.example.yaml").read_text(encoding="utf-8"))
    config["auth"] = {
        "mode": "oidc",
        "oidc": {
            "server_url": keycloak_url,
            "realm": REALM,
            "client_id": CLIENT_ID,
            "timeout": 3,
            "allowed_hosts": ["127.0.0.1"],
        },
    }
    config["upstreams"]["uptime_kuma"]["url"] = kuma_url
    for name in ("prometheus", "alertmanager"):
        if monitoring:
            config["upstreams"][name]["url"] = monitoring[name]
        else:
            config["upstreams"].pop(name, None)
    config["widgets"]["status"].update(status)
    if redis_url:
        config["cache"]["redis_url"] = redis_url
    return config


@contextmanager
def gunicorn(app: str, directory: Path, env: dict[str, str], name: str) -> Iterator[Server]:
    """An app under the project's gunicorn.conf.py (the production settings) on a free port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = directory / f"{name}-{port}.log"
    full_env = {
        **os.environ,
        **IMAGE_ENV,
        "PORTAL_BIND": f"127.0.0.1:{port}",
        "PORTAL_METRICS_BIND": f"127.0.0.1:{free_port()}",
        **env,
    }
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with served([*GUNICORN, app], cwd=ROOT, env=full_env, log_file=log, url=url) as process:
        yield Server(url, process.pid, log)


@contextmanager
def portal(config: dict[str, Any], directory: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """The portal as production runs it (workers, threads and metrics from gunicorn.conf.py)."""
    config_file = directory / f"portal-{free_port()}.yaml"
    database = {**config.get("database", {}), "data_dir": str(directory / "data")}  # out of the checkout
    config_file.write_text(yaml.safe_dump({**config, "database": database}), encoding="utf-8")
    with gunicorn(
        "portal.wsgi:app",
        directory,
        {
            "PORTAL_CONFIG": str(config_file),
            "PORTAL_SECRET_KEY": SECRET_KEY,
            "PORTAL_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            **(env or {}),
        },
        "portal",
    ) as server:
        yield server


@contextmanager
def peers(directory: Path, redis: bool = True) -> Iterator[tuple[Simulator, KeycloakSim, RedisServer | None]]:
    """The simulator, the Keycloak-shaped provider and (optionally) Redis."""
    with ExitStack() as stack:
        sim = stack.enter_context(simulator(directory))
        keycloak = KeycloakSim(directory, extra_users=PEOPLE).start()
        stack.callback(keycloak.stop)
        redis_server = None
        if redis:
            redis_server = RedisServer(directory).start()
            stack.callback(redis_server.stop)
        yield sim, keycloak, redis_server
