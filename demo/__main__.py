"""`python -m demo` (what `make run` does): start the simulators, then the portal under gunicorn.

The demo uses portal.example.yaml as it is, except that upstream URLs point at the local
simulators and the demo identity is on (with a visible "demo" badge).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from simulators import gitlab, prometheus, uptime_kuma
from simulators.base import SimServer

ROOT = Path(__file__).resolve().parent.parent


def demo_config(urls: Mapping[str, str], data_dir: Path | None = None) -> dict[str, Any]:
    """The example configuration, each upstream named in `urls` pointed at its simulator.

    Upstreams the example configures but `urls` does not name are left out (not configured).
    The portal's database goes in `data_dir`.
    """
    config = yaml.safe_load((ROOT / "portal.example.yaml").read_text(encoding="utf-8"))
    config.setdefault("portal", {})["demo"] = True
    config["auth"] = {"mode": "demo"}
    upstreams = config.setdefault("upstreams", {})
    for name in list(upstreams):
        if name not in urls:
            del upstreams[name]
    for name, url in urls.items():
        upstreams[name] = {**(upstreams.get(name) or {}), "url": url, "timeout": 4}
    config.setdefault("cache", {}).pop("redis_url", None)
    if data_dir is not None:
        config.setdefault("database", {})["data_dir"] = str(data_dir)
    return config


def _port(name: str) -> int:
    return int(os.environ.get(name, "0"))


def start_simulators() -> tuple[dict[str, SimServer], dict[str, str]]:
    """Every upstream's simulator on loopback: the servers by name, and the secrets they expect."""
    kuma, _ = uptime_kuma.make_server(port=_port("DEMO_KUMA_PORT"))
    forge, _ = gitlab.make_server(port=_port("DEMO_GITLAB_PORT"))
    prom, alertmanager, _ = prometheus.make_servers(
        prometheus_port=_port("DEMO_PROMETHEUS_PORT"), alertmanager_port=_port("DEMO_ALERTMANAGER_PORT")
    )
    servers = {"uptime_kuma": kuma, "gitlab": forge, "prometheus": prom, "alertmanager": alertmanager}
    for server in servers.values():
        server.start()
    return servers, {"PORTAL_GITLAB_TOKEN": gitlab.TOKEN}


def main() -> int:
    host = os.environ.get("DEMO_HOST", "127.0.0.1")
    port = os.environ.get("DEMO_PORT", "8000")
    metrics_port = os.environ.get("DEMO_METRICS_PORT", "9100")
    servers, upstream_secrets = start_simulators()

    workdir = Path(tempfile.mkdtemp(prefix="portal-demo-"))
    config_file = workdir / "portal.yaml"
    urls = {name: server.url for name, server in servers.items()}
    config_file.write_text(
        yaml.safe_dump(demo_config(urls, workdir / "data"), allow_unicode=True), encoding="utf-8"
    )
    env = {
        **os.environ,
        "PORTAL_CONFIG": str(config_file),
        "PORTAL_SECRET_KEY": os.environ.get("PORTAL_SECRET_KEY") or secrets.token_urlsafe(32),
        "PORTAL_BIND": f"{host}:{port}",
        "PORTAL_METRICS_BIND": f"{host}:{metrics_port}",
        **upstream_secrets,
    }
    for name, server in servers.items():
        print(f"{name} simulator on {server.url}", flush=True)
    print(f"Portal demo on http://{host}:{port}  (Ctrl-C to stop)", flush=True)
    print(f"Its Prometheus metrics on http://{host}:{metrics_port}/metrics", flush=True)
    command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "portal.wsgi:app"]
    child = subprocess.Popen(command, env=env, cwd=ROOT)

    def forward(signum: int, _frame: Any) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait()
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
