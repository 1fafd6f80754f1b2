"""`python -m demo` (what `make run` does): start the simulators, then the portal under gunicorn.

The demo uses portal.example.yaml as it is, except that upstream URLs point at the local
simulators and the demo identity is on (with a visible "demo" badge).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from simulators import gitlab, prometheus, taiga, uptime_kuma
from simulators.base import SimServer

ROOT = Path(__file__).resolve().parent.parent


def _example() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "portal.example.yaml").read_text(encoding="utf-8"))


def demo_config(upstreams: Mapping[str, Mapping[str, Any]], data_dir: Path | None = None) -> dict[str, Any]:
    """The example configuration, each upstream in `upstreams` set to the section given (its
    simulator's URL), the example's others left out; the portal's database in `data_dir`."""
    config = _example()
    config.setdefault("portal", {})["demo"] = True
    config["auth"] = {"mode": "demo", "role_labels": config.get("auth", {}).get("role_labels", {})}
    sections = config.setdefault("upstreams", {})
    for name in list(sections):
        if name not in upstreams:
            del sections[name]
    for name, section in upstreams.items():
        sections[name] = {**(sections.get(name) or {}), "timeout": 4, **section}
    config.setdefault("cache", {}).pop("redis_url", None)
    if data_dir is not None:
        config.setdefault("database", {})["data_dir"] = str(data_dir)
    return config


def _port(name: str) -> int:
    return int(os.environ.get(name, "0"))


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on host:port (gunicorn would fail to bind there).

    SO_REUSEADDR as gunicorn sets it: a port a demo just left (TIME_WAIT) is free again.
    """
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def busy_port_message(host: str, ports: Mapping[str, str]) -> str | None:
    """One line naming the first taken port and the variable that moves it, or None when all are free."""
    for variable, port in ports.items():
        if port.isdigit() and int(port) and port_taken(host, int(port)):
            return (
                f"Port {port} on {host} is already in use (another program, or a demo still running): "
                f"choose another with {variable}, e.g. `make run {variable}={int(port) + 1}`."
            )
    return None


def metrics_port_for(port: str) -> str:
    """The metrics port that goes with the demo's: 9100 beside 8000, 9101 beside 8001, ... so that
    `make run DEMO_PORT=8001` alone runs a second demo beside the first."""
    if port.isdigit() and 0 < int(port) + 1100 < 65536:
        return str(int(port) + 1100)
    return "9100"


def start_simulators(
    zone: str = "UTC",
) -> tuple[dict[str, SimServer], dict[str, dict[str, Any]], dict[str, str]]:
    """Every upstream's simulator on loopback: the servers by name, the upstream sections that
    point at them, and the secrets they expect; Taiga's items dated from today in `zone`."""
    kuma, _ = uptime_kuma.make_server(port=_port("DEMO_KUMA_PORT"))
    forge, _ = gitlab.make_server(port=_port("DEMO_GITLAB_PORT"))
    prom, alertmanager, _ = prometheus.make_servers(
        prometheus_port=_port("DEMO_PROMETHEUS_PORT"), alertmanager_port=_port("DEMO_ALERTMANAGER_PORT")
    )
    tracker, _ = taiga.make_server(taiga.demo_world(zone=ZoneInfo(zone)), port=_port("DEMO_TAIGA_PORT"))
    servers = {
        "uptime_kuma": kuma,
        "gitlab": forge,
        "prometheus": prom,
        "alertmanager": alertmanager,
        "taiga": tracker,
    }
    for server in servers.values():
        server.start()
    sections: dict[str, dict[str, Any]] = {name: {"url": server.url} for name, server in servers.items()}
    sections["taiga"] = {"url": f"{tracker.url}/api/v1/", "front_url": tracker.url}
    credentials = {
        "PORTAL_GITLAB_TOKEN": gitlab.TOKEN,
        "PORTAL_TAIGA_USERNAME": taiga.SERVICE_ACCOUNT[0],
        "PORTAL_TAIGA_PASSWORD": taiga.SERVICE_ACCOUNT[2],
    }
    return servers, sections, credentials


def main() -> int:
    host = os.environ.get("DEMO_HOST", "127.0.0.1")
    port = os.environ.get("DEMO_PORT", "8000")
    metrics_port = os.environ.get("DEMO_METRICS_PORT") or metrics_port_for(port)
    busy = busy_port_message(host, {"DEMO_PORT": port, "DEMO_METRICS_PORT": metrics_port})
    if busy:  # said in one line, before anything starts (gunicorn's own error is several)
        print(busy, file=sys.stderr, flush=True)
        return 1
    servers, sections, credentials = start_simulators(_example().get("portal", {}).get("timezone", "UTC"))

    workdir = Path(tempfile.mkdtemp(prefix="portal-demo-"))
    config_file = workdir / "portal.yaml"
    config = demo_config(sections, workdir / "data")
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = {
        **os.environ,
        "PORTAL_CONFIG": str(config_file),
        "PORTAL_SECRET_KEY": os.environ.get("PORTAL_SECRET_KEY") or secrets.token_urlsafe(32),
        "PORTAL_BIND": f"{host}:{port}",
        "PORTAL_METRICS_BIND": f"{host}:{metrics_port}",
        **credentials,
    }
    for name, server in servers.items():
        print(f"{name} simulator on {server.url}", flush=True)
    print(f"Portal demo on http://{host}:{port}  (Ctrl-C to stop)", flush=True)
    print(f"Its Prometheus metrics on http://{host}:{metrics_port}/metrics", flush=True)
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "portal.wsgi:app"]
    # Gunicorn in a process group of its own, so that a stop (Ctrl-C, `kill` of the demo's
    # group, a closed terminal) reaches the demo alone, which hands it to gunicorn's master,
    # which stops its workers. When every process got the signal at once, a worker could exit
    # before a busy master read it; the master then started a new worker, which could miss the
    # stop and ran until the master's graceful timeout (20 s) killed it.
    child = subprocess.Popen(command, env=env, cwd=ROOT, process_group=0)

    def forward(signum: int, _frame: Any) -> None:
        child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        return child.wait()
    finally:
        if child.poll() is None:  # the demo itself failed: leave nothing behind
            os.killpg(child.pid, signal.SIGKILL)
        for server in servers.values():
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # its configuration and database: a demo's own


if __name__ == "__main__":
    sys.exit(main())
