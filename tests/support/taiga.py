"""The real Taiga API (taiga-back 6.10.0, tests/peers/taiga-back) on loopback, with its seeded data.

`make test-deps` prepares it once under .tools/taiga-back/ (its virtualenv and a migrated, seeded
cluster); a run then has the peer's own setup.sh copy that cluster into a temporary directory,
move the seeded dates to today (UTC) and start PostgreSQL and taiga-back on free ports: ~3 s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from .processes import ROOT, free_port, run_logged, stop_pid

PEER_DIR = ROOT / "tests" / "peers" / "taiga-back"
TOOLS = ROOT / ".tools" / "taiga-back"
SOURCE = TOOLS / "src" / "taiga-back-6.10.0"


class TaigaBack:
    """taiga-back under gunicorn and its PostgreSQL, both stopped by PID at `stop()`.

    `seed` is setup.sh's seed.json: users (username, id, password), projects (id, slug, members),
    milestones, user stories and tasks (id, ref, subject, assigned_to, status, due_date) and
    `counts` (tasks per user, open and closed). `front_url` is the front-end address taiga-back is
    configured with; no front-end runs there.
    """

    def __init__(self) -> None:
        # under /tmp, not pytest's 0700 base: the `postgres` user must reach the cluster
        self.base = Path(tempfile.mkdtemp(prefix="taiga-"))
        self.api_port = free_port()
        self.pg_port = free_port()
        self.front_port = free_port()
        self.seed: dict[str, Any] = {}
        self.started_in: float | None = None

    @property
    def url(self) -> str:
        """The API base, ending with a slash: http://127.0.0.1:PORT/api/v1/."""
        return f"http://127.0.0.1:{self.api_port}/api/v1/"

    @property
    def front_url(self) -> str:
        return f"http://127.0.0.1:{self.front_port}/"

    def start(self) -> TaigaBack:
        check = subprocess.run(
            [PEER_DIR / "install.sh", "--check"], capture_output=True, text=True, timeout=60, check=False
        )
        if check.returncode != 0:
            self.stop()
            raise RuntimeError(f"taiga-back is not prepared ({check.stdout.strip()}): run `make test-deps`")
        env = {
            **os.environ,
            "RT_BASE": str(self.base),
            "PG_PORT": str(self.pg_port),
            "API_PORT": str(self.api_port),
            "FRONT_URL": self.front_url.rstrip("/"),
            "VENV": str(TOOLS / "venv"),
            "PG_TEMPLATE": str(TOOLS / "pgdata-template"),
        }
        began = time.monotonic()
        try:
            self._setup(env)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self

    def _setup(self, env: dict[str, str]) -> None:
        run_logged([PEER_DIR / "setup.sh", SOURCE], self.base / "setup.log", "setup.sh", 150, env)
        self.seed = json.loads((self.base / "seed.json").read_text(encoding="utf-8"))
        requests.get(self.url, timeout=10).raise_for_status()

    def stop(self) -> None:
        """gunicorn's master (TERM: it stops its workers), then the postmaster (INT: fast shutdown)."""
        for name, first in (("gunicorn", signal.SIGTERM), ("postgres", signal.SIGINT)):
            pid_file = self.base / "run" / f"{name}.pid"
            if pid_file.is_file():
                stop_pid(int(pid_file.read_text().split()[0]), first, grace=30)
                pid_file.unlink(missing_ok=True)
        shutil.rmtree(self.base, ignore_errors=True)

    # --- the seeded data ------------------------------------------------------------------------

    def user(self, username: str) -> dict[str, Any]:
        """{"username", "id", "password", "superuser"} of a seeded user (admin, alice, bob)."""
        found: dict[str, Any] = next(u for u in self.seed["users"] if u["username"] == username)
        return found

    def project(self, slug: str) -> dict[str, Any]:
        """{"id", "slug", "name", "is_private", "members"} of a seeded project."""
        found: dict[str, Any] = next(p for p in self.seed["projects"] if p["slug"] == slug)
        return found

    def login(self, username: str) -> dict[str, Any]:
        """POST auth as a seeded user: the answer holds `auth_token` and `refresh`."""
        body = {"type": "normal", "username": username, "password": self.user(username)["password"]}
        answer = requests.post(f"{self.url}auth", json=body, timeout=15)
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found
