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
from pathlib import Path
from typing import Any

import yaml

from simulators import taiga, uptime_kuma

ROOT = Path(__file__).resolve().parent.parent


def demo_config(kuma_url: str, data_dir: Path | None = None, taiga_url: str | None = None) -> dict[str, Any]:
    """The example configuration, pointed at the simulators (its database in `data_dir`)."""
    config = yaml.safe_load((ROOT / "portal.example.yaml").read_text(encoding="utf-8"))
    config.setdefault("portal", {})["demo"] = True
    config["auth"] = {"mode": "demo"}
    config.setdefault("upstreams", {})["uptime_kuma"] = {"url": kuma_url, "timeout": 4}
    if taiga_url:  # its service account: PORTAL_TAIGA_USERNAME / _PASSWORD, the simulator's (see main)
        config["upstreams"]["taiga"] = {"url": f"{taiga_url}/api/v1/", "front_url": taiga_url, "timeout": 4}
    config.setdefault("cache", {}).pop("redis_url", None)
    if data_dir is not None:
        config.setdefault("database", {})["data_dir"] = str(data_dir)
    return config


def main() -> int:
    host = os.environ.get("DEMO_HOST", "127.0.0.1")
    port = os.environ.get("DEMO_PORT", "8000")
    metrics_port = os.environ.get("DEMO_METRICS_PORT", "9100")
    kuma, _ = uptime_kuma.make_server(port=int(os.environ.get("DEMO_KUMA_PORT", "0")))
    kuma.start()
    tracker, _ = taiga.make_server(port=int(os.environ.get("DEMO_TAIGA_PORT", "0")))
    tracker.start()

    workdir = Path(tempfile.mkdtemp(prefix="portal-demo-"))
    config_file = workdir / "portal.yaml"
    config_file.write_text(
        yaml.safe_dump(demo_config(kuma.url, workdir / "data", tracker.url), allow_unicode=True),
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "PORTAL_CONFIG": str(config_file),
        "PORTAL_SECRET_KEY": os.environ.get("PORTAL_SECRET_KEY") or secrets.token_urlsafe(32),
        "PORTAL_BIND": f"{host}:{port}",
        "PORTAL_METRICS_BIND": f"{host}:{metrics_port}",
        "PORTAL_TAIGA_USERNAME": taiga.SERVICE_ACCOUNT[0],
        "PORTAL_TAIGA_PASSWORD": taiga.SERVICE_ACCOUNT[2],
    }
    print(f"Uptime Kuma simulator on {kuma.url}", flush=True)
    print(f"Taiga simulator on {tracker.url}", flush=True)
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
        kuma.stop()
        tracker.stop()


if __name__ == "__main__":
    sys.exit(main())
