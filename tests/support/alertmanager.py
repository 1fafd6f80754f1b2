"""A real Alertmanager for tests (Debian's `prometheus-alertmanager`), and its API v2."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
import yaml

from .processes import free_port, start_child, stop_child


def matchers(labels: dict[str, str]) -> list[dict[str, Any]]:
    """API v2 matchers, equal to each label's value."""
    return [{"name": k, "value": v, "isRegex": False, "isEqual": True} for k, v in labels.items()]


class AlertmanagerServer:
    """`prometheus-alertmanager` on a free loopback port, gossip off, storage in `directory`.

    Every alert goes to one receiver, `"null"`, that notifies nobody: tests read what it holds
    through the API (`alerts()`, `silences()`).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.log = directory / "alertmanager.log"
        self.config_file = directory / "alertmanager.yml"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_config(self, inhibit_rules: list[dict[str, Any]]) -> None:
        config: dict[str, Any] = {
            "route": {
                "receiver": "null",  # yaml.safe_dump quotes it: a bare null would be YAML's null
                "group_by": ["alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "null"}],
        }
        if inhibit_rules:
            config["inhibit_rules"] = inhibit_rules
        self.config_file.write_text(yaml.safe_dump(config), encoding="utf-8")

    def start(self) -> AlertmanagerServer:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            raise RuntimeError("prometheus-alertmanager is not installed: run `make test-deps`")
        self._write_config([])
        command = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # no gossip (it would bind 0.0.0.0:9094)
        ]
        self.process = start_child(
            command, self.log, lambda: requests.get(f"{self.url}/-/ready", timeout=1).ok, "alertmanager"
        )
        return self

    def stop(self) -> None:
        stop_child(self.process)
        self.process = None

    def inhibit(self, inhibit_rules: list[dict[str, Any]]) -> None:
        """Replace its `inhibit_rules` (none: `[]`) and reload; back once they apply.

        Alertmanager answers `POST /-/reload` after the new configuration is in force (or says
        why it refused it); the alerts it holds are kept, and inhibitions are worked out anew.
        """
        self._write_config(inhibit_rules)
        answer = requests.post(f"{self.url}/-/reload", timeout=10)
        if not answer.ok:
            raise RuntimeError(f"alertmanager refused its configuration: {answer.text}")

    # --- API v2 ---------------------------------------------------------------------------------

    def _get(self, path: str, **params: Any) -> Any:
        answer = requests.get(f"{self.url}/api/v2/{path}", params=params, timeout=5)
        answer.raise_for_status()
        return answer.json()

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """The alerts it holds that have not resolved (active, silenced or inhibited), with these labels."""
        found: list[dict[str, Any]] = self._get("alerts", filter=[f'{k}="{v}"' for k, v in labels.items()])
        return found

    def post_alert(self, labels: dict[str, str], annotations: dict[str, str] | None = None) -> None:
        """Send an alert as Prometheus would (it stays active for the default resolve timeout)."""
        alert = {"labels": labels, "annotations": annotations or {}}
        requests.post(f"{self.url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()

    def resolve_alert(self, labels: dict[str, str]) -> None:
        """Send it again as resolved (ending now), as Prometheus does: Alertmanager lists it no
        more, and it cannot show in another test's card for the resolve timeout."""
        ended = datetime.now(UTC).isoformat()
        alert = {"labels": labels, "startsAt": ended, "endsAt": ended}
        requests.post(f"{self.url}/api/v2/alerts", json=[alert], timeout=5).raise_for_status()

    def create_silence(
        self,
        labels: dict[str, str],
        duration: timedelta = timedelta(hours=1),
        comment: str = "silenced by a test",
        created_by: str = "tests",
    ) -> str:
        """Silence the alerts with these labels from now on; returns the silence's id."""
        now = datetime.now(UTC)
        silence = {
            "matchers": matchers(labels),
            "startsAt": now.isoformat(),
            "endsAt": (now + duration).isoformat(),
            "createdBy": created_by,
            "comment": comment,
        }
        answer = requests.post(f"{self.url}/api/v2/silences", json=silence, timeout=5)
        answer.raise_for_status()
        return str(answer.json()["silenceID"])

    def silences(self) -> list[dict[str, Any]]:
        """Every silence, active, pending or expired."""
        found: list[dict[str, Any]] = self._get("silences")
        return found

    def expire_silence(self, silence_id: str) -> None:
        requests.delete(f"{self.url}/api/v2/silence/{silence_id}", timeout=5).raise_for_status()
